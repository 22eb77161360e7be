package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// Installed reports whether database (as Open takes it) holds a Twofold installation: the
// master key check that the first start of the server writes (masterkey.Check). That row, not a
// file, marks an installation because it is what binds a database to its master key on both
// engines, whether the key is a file in the data directory or TWOFOLD_MASTER_KEY; a database
// that only has the schema (twofold migrate) is not one yet.
//
// It creates nothing: a missing SQLite file stays missing (Open would create it), and a
// PostgreSQL database without the schema gets none (Open would migrate it).
func Installed(ctx context.Context, database string) (bool, error) {
	var db *sql.DB
	var err error
	if IsPostgresDSN(database) {
		db, err = sql.Open("pgx", database)
	} else {
		if _, statErr := os.Stat(database); errors.Is(statErr, fs.ErrNotExist) {
			return false, nil
		}
		// mode=rw: open the file as it is, never create it.
		db, err = sql.Open("sqlite", sqliteURI(database)+"?mode=rw&_pragma=busy_timeout(10000)")
	}
	if err != nil {
		return false, fmt.Errorf("open %s: %w", database, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tableQuery := `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'server_keys'`
	if IsPostgresDSN(database) {
		// The table the queries would find, by the search_path.
		tableQuery = `SELECT count(*) FROM (SELECT to_regclass('server_keys') AS t) AS r WHERE t IS NOT NULL`
	}
	var tables int
	if err := db.QueryRowContext(ctx, tableQuery).Scan(&tables); err != nil {
		return false, err
	}
	if tables == 0 {
		return false, nil
	}
	var rows int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM server_keys WHERE name = $1`, KeyCheckRow).Scan(&rows); err != nil {
		return false, err
	}
	return rows > 0, nil
}

// sqliteURI is the file: URI of the SQLite database at path, without query: what SQLite would
// read as query, fragment or escape is escaped.
func sqliteURI(path string) string {
	return "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}
