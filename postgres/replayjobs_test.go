package postgres_test

import (
	"testing"

	"github.com/eventkit/eventkit/postgres"
	"github.com/eventkit/eventkit/replay"
	"github.com/eventkit/eventkit/replay/jobstoretest"
)

func TestJobStore(t *testing.T) {
	jobstoretest.Run(t, func(t *testing.T) replay.JobStore { return postgres.NewJobStore(openDB(t)) })
}
