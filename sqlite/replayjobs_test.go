package sqlite_test

import (
	"testing"

	"github.com/eventkit/eventkit/replay"
	"github.com/eventkit/eventkit/replay/jobstoretest"
	"github.com/eventkit/eventkit/sqlite"
)

func TestJobStore(t *testing.T) {
	jobstoretest.Run(t, func(t *testing.T) replay.JobStore { return sqlite.NewJobStore(openDB(t)) })
}
