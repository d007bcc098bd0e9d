-- The PostgreSQL form of sqlite/00002_account_language.sql, which says why.

-- +goose Up
ALTER TABLE accounts ADD COLUMN language TEXT;

-- +goose Down
ALTER TABLE accounts DROP COLUMN language;
