package web

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Role is what a token may do. Roles are ordered: an operator may do
// everything a viewer may.
type Role uint8

const (
	// Public routes (health, metrics, the login page) need no token.
	Public Role = iota
	// Viewer reads: events, topics, the audit log.
	Viewer
	// Operator also changes things: replays, offsets, commands to agents.
	Operator
)

func (r Role) String() string {
	switch r {
	case Viewer:
		return "viewer"
	case Operator:
		return "operator"
	}
	return "public"
}

// ParseRole reads "viewer" or "operator".
func ParseRole(s string) (Role, error) {
	switch s {
	case "viewer":
		return Viewer, nil
	case "operator":
		return Operator, nil
	}
	return Public, fmt.Errorf("role %q: want viewer or operator", s)
}

// errNotARole says a token's role is not one, without quoting it: with the
// columns swapped, it would be the secret, printed in a log.
var errNotARole = errors.New("the role (second field) is neither viewer nor operator; the fields are name, role, token")

// MinTokenLen is the shortest token accepted: a guessable token is worse
// than none, because it looks like protection.
const MinTokenLen = 16

// Token is one bearer token: a name for the audit log, a role, and the
// secret itself, which nothing records.
type Token struct {
	Name   string
	Role   Role
	Secret string
}

// Tokens is the set of tokens the server accepts.
type Tokens struct {
	list []storedToken
}

type storedToken struct {
	name string
	role Role
	hash [sha256.Size]byte
}

// NewTokens checks ts (names and secrets unique, secrets at least
// MinTokenLen long, names without spaces) and returns them as a set.
func NewTokens(ts ...Token) (*Tokens, error) {
	names := make(map[string]bool)
	hashes := make(map[[sha256.Size]byte]bool)
	set := &Tokens{}
	var errs []error
	for _, t := range ts {
		h := sha256.Sum256([]byte(t.Secret))
		switch {
		case t.Name == "" || strings.ContainsAny(t.Name, " \t\r\n:,#"):
			errs = append(errs, fmt.Errorf("token name %q: want a word without spaces, ':', ',' or '#'", t.Name))
		case t.Role != Viewer && t.Role != Operator:
			errs = append(errs, fmt.Errorf("token %s: role %v: want viewer or operator", t.Name, t.Role))
		case len(t.Secret) < MinTokenLen:
			errs = append(errs, fmt.Errorf("token %s: %d characters, want at least %d", t.Name, len(t.Secret), MinTokenLen))
		case names[t.Name]:
			errs = append(errs, fmt.Errorf("token name %s given twice", t.Name))
		case hashes[h]:
			errs = append(errs, fmt.Errorf("token %s: the same secret as another token", t.Name))
		}
		names[t.Name], hashes[h] = true, true
		set.list = append(set.list, storedToken{name: t.Name, role: t.Role, hash: h})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return set, nil
}

// Len is the number of tokens.
func (s *Tokens) Len() int { return len(s.list) }

// lookup finds the token whose secret is secret. It compares the secret's
// hash with every token's, all of them whatever matches, in constant time:
// neither the time taken nor the length of a secret tells an attacker how
// close a guess came or which token it was near.
func (s *Tokens) lookup(secret string) (name string, role Role, ok bool) {
	h := sha256.Sum256([]byte(secret))
	found := -1
	for i := range s.list {
		if subtle.ConstantTimeCompare(h[:], s.list[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 || secret == "" {
		return "", Public, false
	}
	return s.list[found].name, s.list[found].role, true
}

// ParseTokensFile reads a tokens file: one token a line, "NAME ROLE TOKEN"
// separated by spaces or tabs; '#' starts a comment; blank lines are
// skipped.
func ParseTokensFile(r io.Reader) ([]Token, error) {
	var ts []Token
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 3 {
			return nil, fmt.Errorf("line %d: %d fields, want NAME ROLE TOKEN", n, len(fields))
		}
		role, err := ParseRole(fields[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, errNotARole)
		}
		ts = append(ts, Token{Name: fields[0], Role: role, Secret: fields[2]})
	}
	return ts, sc.Err()
}

// ParseTokensEnv reads the EVENTKIT_TOKENS form: "name:role:token,…".
func ParseTokensEnv(s string) ([]Token, error) {
	var ts []Token
	for i, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		parts := strings.SplitN(item, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("item %d: want name:role:token", i+1)
		}
		role, err := ParseRole(parts[1])
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i+1, errNotARole)
		}
		ts = append(ts, Token{Name: parts[0], Role: role, Secret: parts[2]})
	}
	return ts, nil
}

// LoadTokens reads the tokens of a tokens file (none when file is empty)
// and of an EVENTKIT_TOKENS value, and checks them together. Having no
// token at all is an error: the server would refuse every request.
func LoadTokens(file, env string) (*Tokens, error) {
	var ts []Token
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("tokens file: %w", err)
		}
		defer f.Close()
		ft, err := ParseTokensFile(f)
		if err != nil {
			return nil, fmt.Errorf("tokens file %s: %w", file, err)
		}
		ts = append(ts, ft...)
	}
	et, err := ParseTokensEnv(env)
	if err != nil {
		return nil, fmt.Errorf("EVENTKIT_TOKENS: %w", err)
	}
	ts = append(ts, et...)
	if len(ts) == 0 {
		return nil, errors.New("no tokens: give a tokens file or set EVENTKIT_TOKENS=name:role:token")
	}
	return NewTokens(ts...)
}
