package reports

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/eventkit/eventkit/examples/payments/internal/web"
)

func (s *Service) routes() http.Handler {
	mux := web.NewMux(s.log)
	mux.Route("GET /accounts/{id}/volume", s.volume)
	mux.Route("GET /totals/daily", s.dailyTotals)
	mux.Route("GET /transfers/failed", s.failedTransfers)
	return mux
}

// Account is what reports knows of an account.
type Account struct {
	ID         string `json:"id"`
	HolderName string `json:"holder_name"`
	Country    string `json:"country"`
	Status     string `json:"status"`
	// Language is the holder's language, "" when they chose none; null
	// while the database is before migration 2 or the account's row has
	// not been backfilled since.
	Language  *string   `json:"language"`
	Version   int64     `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Amount is a count and a sum of transfers in one currency.
type Amount struct {
	Currency    string `json:"currency"`
	Transfers   int64  `json:"transfers"`
	AmountMinor int64  `json:"amount_minor"`
}

// Volume answers GET /accounts/{id}/volume.
type Volume struct {
	Account *Account  `json:"account"` // null until its first account.updated
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	// Sent is what the account paid in completed transfers created in
	// [From, To), by currency.
	Sent []Amount `json:"sent"`
	// Holder is the holder as transfers has it now, with expand=holder.
	Holder json.RawMessage `json:"holder,omitempty"`
}

// query returns r's query parameters; one that does not decode (a bad
// escape, a ';') is a 400, where r.URL.Query would drop it and let its
// default answer.
func query(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, web.Errorf(http.StatusBadRequest, "query: %v", err)
	}
	return q, nil
}

// volume answers the outgoing volume of an account over a time range, read
// from the covering index alone. With expand=holder it adds the holder's
// full record, which reports does not keep, asked of transfers.
func (s *Service) volume(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	from, err := timeParam(q, "from", time.Time{})
	if err != nil {
		return err
	}
	to, err := timeParam(q, "to", time.Now().UTC())
	if err != nil {
		return err
	}
	if !from.Before(to) {
		return web.Errorf(http.StatusBadRequest, "from must be before to")
	}
	expand := q.Get("expand")
	if expand != "" && expand != "holder" {
		return web.Errorf(http.StatusBadRequest, "expand %q: only holder", expand)
	}
	id := r.PathValue("id")
	if !storable(id) {
		return web.Errorf(http.StatusNotFound, "account %q: no such account", id)
	}
	v := Volume{From: from, To: to, Sent: []Amount{}}
	ctx := r.Context()
	if v.Account, err = s.account(ctx, id); err != nil {
		return err
	}
	rows, err := s.st.read.QueryContext(ctx, s.st.q(`SELECT currency, count(*), CAST(sum(amount_minor) AS BIGINT) FROM transfers
		WHERE account = ? AND created_at >= ? AND created_at < ? AND status = 'completed'
		GROUP BY currency ORDER BY currency`), id, ceilMicro(from), ceilMicro(to))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var a Amount
		if err := rows.Scan(&a.Currency, &a.Transfers, &a.AmountMinor); err != nil {
			return err
		}
		v.Sent = append(v.Sent, a)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if expand == "holder" {
		if v.Holder, err = s.holder(ctx, id); err != nil {
			return err
		}
	}
	web.JSON(w, http.StatusOK, &v)
	return nil
}

func (s *Service) account(ctx context.Context, id string) (*Account, error) {
	var (
		a    Account
		us   int64
		lang sql.NullString
	)
	language := "language"
	if s.st.schema < schemaLanguage {
		language = "NULL"
	}
	err := s.st.read.QueryRowContext(ctx, s.st.q(`SELECT id, holder_name, country, status, `+language+`, version, updated_at FROM accounts WHERE id = ?`), id).
		Scan(&a.ID, &a.HolderName, &a.Country, &a.Status, &lang, &a.Version, &us)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	a.UpdatedAt = time.UnixMicro(us).UTC()
	if lang.Valid {
		a.Language = &lang.String
	}
	return &a, nil
}

// holder asks transfers for the account and returns its holder object as
// transfers serves it: reports neither keeps nor interprets it.
func (s *Service) holder(ctx context.Context, id string) (json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.TransfersURL+"/accounts/"+url.PathEscape(id), nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, web.Errorf(http.StatusBadGateway, "transfers: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, web.MaxBody))
	switch {
	case err != nil:
		return nil, web.Errorf(http.StatusBadGateway, "transfers: %v", err)
	case resp.StatusCode == http.StatusNotFound:
		return nil, web.Errorf(http.StatusNotFound, "account %s: not found at transfers", id)
	case resp.StatusCode != http.StatusOK:
		return nil, web.Errorf(http.StatusBadGateway, "transfers answered %s", resp.Status)
	}
	var acc struct {
		Holder json.RawMessage `json:"holder"`
	}
	if err := json.Unmarshal(body, &acc); err != nil || len(acc.Holder) == 0 {
		return nil, web.Errorf(http.StatusBadGateway, "transfers answered an account without a holder")
	}
	return acc.Holder, nil
}

// Day is the completed transfers of one day in one currency.
type Day struct {
	Day string `json:"day"`
	Amount
}

// maxDays bounds the range of one daily-totals query; without from and
// to, it covers the defaultDays that end today (UTC).
const (
	maxDays     = 3660
	defaultDays = 30
)

// dailyTotals answers the completed transfers per day (UTC, by completion)
// and currency, from the totals kept as completions arrive.
func (s *Service) dailyTotals(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	to, err := dayParam(q, "to", time.Now().UTC().Truncate(24*time.Hour))
	if err != nil {
		return err
	}
	from, err := dayParam(q, "from", to.AddDate(0, 0, -(defaultDays-1)))
	if err != nil {
		return err
	}
	if to.Before(from) || to.Sub(from) > maxDays*24*time.Hour {
		return web.Errorf(http.StatusBadRequest, "want from <= to, at most %d days apart", maxDays)
	}
	cur := q.Get("currency")
	if cur != "" && !currencyRe.MatchString(cur) {
		return web.Errorf(http.StatusBadRequest, "currency %q: want an ISO 4217 code such as EUR", cur)
	}
	rows, err := s.st.read.QueryContext(r.Context(), s.st.q(`SELECT day, currency, transfers, amount_minor FROM daily_totals
		WHERE day >= ? AND day <= ? AND (CAST(? AS TEXT) = '' OR currency = ?) ORDER BY day, currency`),
		from.Format(dayLayout), to.Format(dayLayout), cur, cur)
	if err != nil {
		return err
	}
	defer rows.Close()
	days := []Day{}
	for rows.Next() {
		var d Day
		if err := rows.Scan(&d.Day, &d.Currency, &d.Transfers, &d.AmountMinor); err != nil {
			return err
		}
		days = append(days, d)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	web.JSON(w, http.StatusOK, map[string]any{"days": days})
	return nil
}

// FailedTransfer is one row of the failed-transfers report.
type FailedTransfer struct {
	ID           string    `json:"id"`
	Account      string    `json:"account"`
	Counterparty string    `json:"counterparty"`
	AmountMinor  int64     `json:"amount_minor"`
	Currency     string    `json:"currency"`
	CreatedAt    time.Time `json:"created_at"`
	FailedAt     time.Time `json:"failed_at"`
}

// FailedPage answers GET /transfers/failed.
type FailedPage struct {
	Transfers  []FailedTransfer `json:"transfers"`
	NextCursor string           `json:"next_cursor,omitempty"`
}

// failedTransfers pages through failed transfers, newest first, with a
// keyset cursor: each page is one range read of the partial index, however
// deep it is.
func (s *Service) failedTransfers(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	limit := 50
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return web.Errorf(http.StatusBadRequest, "limit %q: want 1 to 1000", v)
		}
		limit = n
	}
	at, id := int64(1<<62), ""
	if c := q.Get("cursor"); c != "" {
		var err error
		if at, id, err = parseCursor(c); err != nil {
			return err
		}
	}
	rows, err := s.st.read.QueryContext(r.Context(), s.st.q(`SELECT id, account, counterparty, amount_minor, currency, created_at, completed_at
		FROM transfers WHERE status = 'failed' AND (created_at, id) < (?, ?)
		ORDER BY created_at DESC, id DESC LIMIT ?`), at, id, limit+1)
	if err != nil {
		return err
	}
	defer rows.Close()
	page := FailedPage{Transfers: []FailedTransfer{}}
	for rows.Next() {
		var (
			t       FailedTransfer
			created int64
			settled sql.NullInt64 // NULL in rows a malformed event wrote before the decoder refused it
		)
		if err := rows.Scan(&t.ID, &t.Account, &t.Counterparty, &t.AmountMinor, &t.Currency, &created, &settled); err != nil {
			return err
		}
		t.CreatedAt = time.UnixMicro(created).UTC()
		if settled.Valid {
			t.FailedAt = time.UnixMicro(settled.Int64).UTC()
		}
		page.Transfers = append(page.Transfers, t)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(page.Transfers) > limit {
		page.Transfers = page.Transfers[:limit]
		last := page.Transfers[limit-1]
		page.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(last.CreatedAt.UnixMicro(), 10) + "/" + last.ID))
	}
	web.JSON(w, http.StatusOK, &page)
	return nil
}

func parseCursor(c string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		at, id, ok := strings.Cut(string(b), "/")
		if n, perr := strconv.ParseInt(at, 10, 64); ok && perr == nil && id != "" && storable(id) {
			return n, id, nil
		}
	}
	return 0, "", web.Errorf(http.StatusBadRequest, "cursor %q: not one this service gave", c)
}

func timeParam(q url.Values, name string, def time.Time) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, web.Errorf(http.StatusBadRequest, "%s %q: want RFC 3339", name, v)
	}
	if checkTime(name, t) != nil {
		return time.Time{}, web.Errorf(http.StatusBadRequest, "%s %q: want a year from 1 to 9999 in UTC", name, v)
	}
	return t.UTC(), nil
}

// ceilMicro returns the first whole microsecond at or after t: the stored
// times are microseconds, and c >= t (or c < t) holds for a stored c
// exactly when it holds against ceilMicro(t).
func ceilMicro(t time.Time) int64 {
	us := t.UnixMicro()
	if t.After(time.UnixMicro(us)) {
		us++
	}
	return us
}

func dayParam(q url.Values, name string, def time.Time) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	t, err := time.Parse(dayLayout, v)
	if err != nil {
		return time.Time{}, web.Errorf(http.StatusBadRequest, "%s %q: want a day as YYYY-MM-DD", name, v)
	}
	return t, nil
}

// storable reports whether s can be compared with a text column: PostgreSQL
// refuses NUL bytes and invalid UTF-8, and no id holds them.
func storable(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }
