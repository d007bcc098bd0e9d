// Package sqlmigrate applies a service's embedded goose migrations to a
// database that other schemas share, each under a version table of its own.
package sqlmigrate

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
)

// Up applies the migrations in fsys to db, tracking them in table: eventkit's
// own migrations use goose's default table in the same file, and sharing it
// would make each set see the other's versions as its own.
func Up(ctx context.Context, db *sql.DB, fsys fs.FS, table string) error {
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys, goose.WithTableName(table))
	if err != nil {
		return fmt.Errorf("migrations %s: %w", table, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", table, err)
	}
	return nil
}
