package transfers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/eventkit/eventkit/examples/payments/events"
	"github.com/eventkit/eventkit/examples/payments/internal/web"
)

// Account is the full account representation that transfers owns and
// serves at GET /accounts/{id}. Reports keeps only a few of its fields and
// asks for the rest when it needs them.
type Account struct {
	ID        string    `json:"id"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	Status   string `json:"status"` // active, frozen, closed
	Nickname string `json:"nickname,omitempty"`

	Holder      Holder            `json:"holder"`
	Limits      Limits            `json:"limits"`
	Preferences Preferences       `json:"preferences"`
	KYC         KYC               `json:"kyc"`
	Tags        []string          `json:"tags,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

// Holder is the person or business that holds an account.
type Holder struct {
	Name      string  `json:"name"`
	Email     string  `json:"email,omitempty"`
	Phone     string  `json:"phone,omitempty"`
	BirthDate string  `json:"birth_date,omitempty"`
	Address   Address `json:"address"`
}

// Address is a postal address.
type Address struct {
	Line1      string `json:"line1,omitempty"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city,omitempty"`
	Region     string `json:"region,omitempty"`
	PostalCode string `json:"postal_code,omitempty"`
	Country    string `json:"country"` // ISO 3166-1 alpha-2
}

// Limits cap what an account may send, in minor units of Currency.
type Limits struct {
	Currency         string `json:"currency,omitempty"`
	DailyMinor       int64  `json:"daily_minor,omitempty"`
	MonthlyMinor     int64  `json:"monthly_minor,omitempty"`
	PerTransferMinor int64  `json:"per_transfer_minor,omitempty"`
}

// Preferences are the holder's choices.
type Preferences struct {
	Language      string        `json:"language,omitempty"`
	Timezone      string        `json:"timezone,omitempty"`
	Statements    string        `json:"statements,omitempty"` // email, paper
	Notifications Notifications `json:"notifications"`
}

// Notifications say which channels the holder accepts.
type Notifications struct {
	Email bool `json:"email"`
	SMS   bool `json:"sms"`
	Push  bool `json:"push"`
}

// KYC is the know-your-customer state of the holder.
type KYC struct {
	Status     string     `json:"status,omitempty"` // pending, verified, rejected
	Level      int        `json:"level,omitempty"`
	RiskTier   string     `json:"risk_tier,omitempty"` // low, medium, high
	VerifiedAt *time.Time `json:"verified_at,omitempty"`
	Documents  []Document `json:"documents,omitempty"`
}

// Document is an identity document seen during KYC.
type Document struct {
	Type      string `json:"type"`
	Number    string `json:"number"`
	Country   string `json:"country,omitempty"`
	ExpiresOn string `json:"expires_on,omitempty"`
}

var (
	countryRe  = regexp.MustCompile(`^[A-Z]{2}$`)
	currencyRe = regexp.MustCompile(`^[A-Z]{3}$`)
)

var accountStatuses = map[string]bool{"active": true, "frozen": true, "closed": true}

// validate checks what a client may set; a violation is a 400.
func (a *Account) validate() error {
	switch {
	case a.Holder.Name == "":
		return web.Errorf(http.StatusBadRequest, "holder.name is required")
	case !countryRe.MatchString(a.Holder.Address.Country):
		return web.Errorf(http.StatusBadRequest, "holder.address.country %q: want an ISO 3166 alpha-2 code such as DE", a.Holder.Address.Country)
	case !accountStatuses[a.Status]:
		return web.Errorf(http.StatusBadRequest, "status %q: want active, frozen or closed", a.Status)
	case a.Limits.Currency != "" && !currencyRe.MatchString(a.Limits.Currency):
		return web.Errorf(http.StatusBadRequest, "limits.currency %q: want an ISO 4217 code such as EUR", a.Limits.Currency)
	case a.Limits.DailyMinor < 0 || a.Limits.MonthlyMinor < 0 || a.Limits.PerTransferMinor < 0:
		return web.Errorf(http.StatusBadRequest, "limits must not be negative")
	}
	return nil
}

// maxAccountBytes bounds an account's encoded size, well below the 1 MB a
// producer batch holds by default.
const maxAccountBytes = 256 << 10

// accountPayload encodes a as the data of account.updated in the schema of
// the given version (1 or 2) and returns it with the schema's name.
func accountPayload(a *Account, version int) (data []byte, schema string, err error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, "", err
	}
	m, err := web.DecodeDoc(b)
	if err != nil {
		return nil, "", err
	}
	switch version {
	case 1:
		// v1 predates the risk tier.
		schema = events.AccountSchemaV1
		if kyc, ok := m["kyc"].(map[string]any); ok {
			delete(kyc, "risk_tier")
		}
	case 2:
		schema = events.AccountSchemaV2
		delete(m, "nickname")
		if h, ok := m["holder"].(map[string]any); ok {
			h["legal_name"] = h["name"]
			delete(h, "name")
		}
	default:
		return nil, "", fmt.Errorf("account.updated version %d: want 1 or 2", version)
	}
	b, err = json.Marshal(m)
	return b, schema, err
}
