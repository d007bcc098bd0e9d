package reports

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventkit/eventkit/sqlite"
	"github.com/pressly/goose/v3"
)

// TestAccountBackfillKeepsTheNewestVersion replays an account's history
// over a row written before migration 2: only the row's own version fills
// the new column, and no older version takes anything back.
func TestAccountBackfillKeepsTheNewestVersion(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "reports.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	migrate := func(to int64) int64 {
		v, err := migrateStore(ctx, goose.DialectSQLite3, db.Writer(), "sqlite", to)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	exec := func(q string, args ...any) (int64, error) {
		res, err := db.Writer().ExecContext(ctx, q, args...)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	history := []*accountRow{
		{ID: "a1", HolderName: "Ada", Country: "GB", Status: "active", Language: "en", Version: 1},
		{ID: "a1", HolderName: "Ada King", Country: "GB", Status: "active", Language: "fr", Version: 2},
		{ID: "a1", HolderName: "Ada King", Country: "FR", Status: "frozen", Language: "de", Version: 3},
	}
	for i, a := range history {
		a.UpdatedAt = time.Date(2026, 3, 1, i, 0, 0, 0, time.UTC)
	}
	schema := migrate(1)
	for _, a := range history {
		if err := apply(exec, &write{account: a}, schema); err != nil {
			t.Fatal(err)
		}
	}
	if schema = migrate(0); schema < schemaLanguage {
		t.Fatalf("schema %d after migrating up", schema)
	}
	row := func() (name, country, status string, lang sql.NullString, version int64) {
		t.Helper()
		err := db.Reader().QueryRowContext(ctx, `SELECT holder_name, country, status, language, version FROM accounts WHERE id = 'a1'`).
			Scan(&name, &country, &status, &lang, &version)
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	if _, _, _, lang, _ := row(); lang.Valid {
		t.Fatalf("language %q before the backfill, want NULL", lang.String)
	}
	// Oldest first, as a replay sends them, then an older version after
	// the current one: a "fill while NULL" path would keep "en", one that
	// lets any replayed version write would end with "fr".
	for _, i := range []int{0, 2, 1} {
		if err := apply(exec, &write{account: history[i]}, schema); err != nil {
			t.Fatal(err)
		}
		if name, country, status, _, version := row(); name != "Ada King" || country != "FR" || status != "frozen" || version != 3 {
			t.Fatalf("after replaying version %d: %s %s %s %d, want version 3 intact", history[i].Version, name, country, status, version)
		}
	}
	if _, _, _, lang, _ := row(); lang != (sql.NullString{String: "de", Valid: true}) {
		t.Fatalf("language %v after the backfill, want version 3's de", lang)
	}
	// The same version stamped earlier (a forged or malformed event: one
	// version is one state) does not take the row back either.
	stale := *history[2]
	stale.HolderName, stale.UpdatedAt = "Stale", history[0].UpdatedAt
	if err := apply(exec, &write{account: &stale}, schema); err != nil {
		t.Fatal(err)
	}
	if name, _, _, _, _ := row(); name != "Ada King" {
		t.Fatalf("holder %q after version 3 stamped earlier, want version 3's Ada King", name)
	}
}
