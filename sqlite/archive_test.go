package sqlite_test

import (
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventkit/internal/archivesql"
	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/lookback/archivetest"
	"github.com/eventkit/eventkit/sqlite"
)

func TestArchive(t *testing.T) {
	archivetest.Run(t, func(t *testing.T) lookback.Archive { return sqlite.NewArchive(openDB(t)) })
}

func TestAuditLog(t *testing.T) {
	archivetest.RunAudit(t, func(t *testing.T) lookback.AuditLog {
		l := sqlite.NewAuditLog(openDB(t))
		t.Cleanup(func() { l.Close() })
		return l
	})
}

// TestPagesNeedNoSort pins that a page of one topic, or of every topic, in
// either order and past a cursor, is read in index order: a sort of the
// records that tie on ts copies every record it reads, value and all,
// through a temporary b-tree.
func TestPagesNeedNoSort(t *testing.T) {
	db := openDB(t)
	now := time.Now()
	cursor := func(o lookback.Order) string {
		return lookback.EncodeCursor(o, lookback.Position{Topic: "orders", Partition: 1, Offset: 5, Timestamp: now.Add(-time.Minute)})
	}
	for _, o := range []lookback.Order{lookback.Asc, lookback.Desc} {
		for _, f := range []lookback.Filter{{Topic: "orders", To: now}, {From: now.Add(-time.Hour), To: now}} {
			for _, c := range []string{"", cursor(o)} {
				stmt, args, err := archivesql.Query(archivesql.SQLite, lookback.Query{Filter: f, Order: o, Cursor: c, Limit: 1000, Bare: true})
				if err != nil {
					t.Fatal(err)
				}
				rows, err := db.Reader().Query("EXPLAIN QUERY PLAN "+stmt, args...)
				if err != nil {
					t.Fatal(err)
				}
				var plan []string
				for rows.Next() {
					var id, parent, unused int
					var detail string
					if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
						t.Fatal(err)
					}
					plan = append(plan, detail)
				}
				rows.Close()
				if p := strings.Join(plan, "; "); strings.Contains(p, "TEMP B-TREE") {
					t.Errorf("%s\nplan: %s", stmt, p)
				}
			}
		}
	}
}
