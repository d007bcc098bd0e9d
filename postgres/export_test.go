package postgres

// SetStatementBytes lowers the payload bound of one insert for a test, and
// returns what puts it back.
func SetStatementBytes(n int) (restore func()) {
	old := statementBytes
	statementBytes = n
	return func() { statementBytes = old }
}

// NamesPoolSize is namesPoolSize, for its test.
var NamesPoolSize = namesPoolSize
