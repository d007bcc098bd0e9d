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
	_, err := UpTo(ctx, goose.DialectSQLite3, db, fsys, table, 0)
	return err
}

// UpTo is Up in the given SQL dialect, stopping at version (0: the newest),
// and returns the version the database is at afterwards. A database
// already past version stays as it is: migrations only go up here.
func UpTo(ctx context.Context, dialect goose.Dialect, db *sql.DB, fsys fs.FS, table string, version int64) (int64, error) {
	p, err := goose.NewProvider(dialect, db, fsys, goose.WithTableName(table))
	if err != nil {
		return 0, fmt.Errorf("migrations %s: %w", table, err)
	}
	if version > 0 {
		_, err = p.UpTo(ctx, version)
	} else {
		_, err = p.Up(ctx)
	}
	if err != nil {
		return 0, fmt.Errorf("migrate %s: %w", table, err)
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrations %s: %w", table, err)
	}
	return v, nil
}
