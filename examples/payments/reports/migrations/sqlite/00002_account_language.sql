-- Reports now shows each account's language (preferences.language in
-- account.updated v1 and v2 alike: the language its statements go out in),
-- which it did not keep before. The column starts
-- NULL for every existing account, meaning "not known yet"; an account
-- without a language gets ''. A replay of account.updated from the lookback
-- archive to the reports group fills the NULLs (see the README's
-- "Evolving event C").

-- +goose Up
ALTER TABLE accounts ADD COLUMN language TEXT;

-- +goose Down
ALTER TABLE accounts DROP COLUMN language;
