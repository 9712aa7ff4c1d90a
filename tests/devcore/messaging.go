package devcore

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Verification codes, connectors and social linking, as Logto 1.42's Management API answers
// them (logto-samples-stepup.json, exchanges 127-137 and 154-167), with Logto's mock email, SMS
// and social connectors (the ones its integration tests use). Codes are "sent" nowhere: the
// dev-only LastCode (and GET /dev/verification-codes) reads what was sent, as the integration
// tests read the mock connectors' message file.

// Seeded connectors (ids are instance ids; connectorId is the factory, which the Management
// API does not accept in their place, exchange 155).
const (
	MockSocialConnectorID = "mocksocial01"
	MockEmailConnectorID  = "mockemail001"
	MockSMSConnectorID    = "mocksms00001"
	MockSocialTarget      = "mock-social"
)

// Logto's passcode policy defaults (verificationCodePolicy): codes expire after 10 minutes and
// allow 10 tries; a recipient gets at most 10 messages per 10 minutes.
const (
	codeLifetime        = 10 * time.Minute
	codeMaxTries        = 10
	messageLimit        = 10
	messageLimitWindow  = 10 * time.Minute
	mockSocialAuthorize = "http://mock-social/"
)

// connector is a connector instance, in the fields GET /api/connectors/{id} requires.
type connector struct {
	ID                      string          `json:"id"`
	SyncProfile             bool            `json:"syncProfile"`
	EnableTokenStorage      bool            `json:"enableTokenStorage"`
	Config                  json.RawMessage `json:"config"`
	Metadata                json.RawMessage `json:"metadata"`
	ConnectorID             string          `json:"connectorId"`
	Target                  string          `json:"target"`
	Name                    json.RawMessage `json:"name"`
	Description             json.RawMessage `json:"description"`
	Logo                    string          `json:"logo"`
	LogoDark                *string         `json:"logoDark"`
	Readme                  string          `json:"readme"`
	Platform                *string         `json:"platform"`
	IsStandard              bool            `json:"isStandard"`
	IsTokenStorageSupported bool            `json:"isTokenStorageSupported"`
	Type                    string          `json:"type"`
	IsDemo                  bool            `json:"isDemo"`
}

func seedConnectors() map[string]*connector {
	mk := func(id, factory, typ, target string, platform *string, sync bool) *connector {
		return &connector{
			ID: id, SyncProfile: sync, Config: json.RawMessage("{}"), ConnectorID: factory, Target: target,
			Metadata:    json.RawMessage(fmt.Sprintf(`{"target":%q,"name":{"en":%q},"logo":"./logo.png","logoDark":null}`, target, factory)),
			Name:        json.RawMessage(fmt.Sprintf(`{"en":%q}`, factory)),
			Description: json.RawMessage(`{"en":"Mock connector of the dev core."}`),
			Logo:        "./logo.png", Readme: "", Platform: platform, Type: typ,
		}
	}
	universal := "Universal"
	return map[string]*connector{
		MockSocialConnectorID: mk(MockSocialConnectorID, "mock-social-connector", "Social", MockSocialTarget, &universal, true),
		MockEmailConnectorID:  mk(MockEmailConnectorID, "mock-email-service", "Email", "mock-mail", nil, false),
		MockSMSConnectorID:    mk(MockSMSConnectorID, "mock-short-message-service", "Sms", "mock-sms", nil, false),
	}
}

// passcode is the live code of one recipient.
type passcode struct {
	code      string
	createdAt time.Time
	tries     int
}

// SentCode is a message the mock email or SMS connector "sent".
type SentCode struct {
	To   string `json:"to"`
	Code string `json:"code"`
}

// LastCode returns the last code sent to an email address or phone number (dev only), and
// whether one was sent.
func (c *Core) LastCode(to string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.sent) - 1; i >= 0; i-- {
		if c.sent[i].To == to {
			return c.sent[i].Code, true
		}
	}
	return "", false
}

// handleDevLastCode is GET /dev/verification-codes?to=<address>: {to, code}, or 404.
func (c *Core) handleDevLastCode(w http.ResponseWriter, r *http.Request) {
	to := r.URL.Query().Get("to")
	code, ok := c.LastCode(to)
	if !ok {
		writeError(w, http.StatusNotFound, "entity.not_found")
		return
	}
	writeJSON(w, http.StatusOK, SentCode{To: to, Code: code})
}

// codeRecipients reads {email} and/or {phone} (Logto's guard: each with its regex); the
// verify route also needs verificationCode.
func codeRecipients(g *guard, body map[string]json.RawMessage) []string {
	var to []string
	for _, k := range []string{"email", "phone"} {
		raw, ok := body[k]
		if !ok {
			continue
		}
		s, isString := g.str(path{k}, raw)
		if !isString {
			continue
		}
		re := emailRegex
		if k == "phone" {
			re = phoneRegex
		}
		if !re.MatchString(s) {
			g.stringIssue(path{k}, "regex")
			continue
		}
		to = append(to, s)
	}
	if len(to) == 0 && len(g.issues) == 0 {
		g.typeIssue(path{"email"}, "string", nil)
	}
	return to
}

// hasConnector reports whether a connector of the type (Email, Sms, Social) is configured.
func (c *Core) hasConnector(kind string) bool {
	for _, cn := range c.connectors {
		if cn.Type == kind {
			return true
		}
	}
	return false
}

// handleDevDeleteConnector is DELETE /dev/connectors/{id}: tests remove a connector to see how
// the module answers when the core has none of a kind.
func (c *Core) handleDevDeleteConnector(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.connectors[r.PathValue("id")] == nil {
		writeError(w, http.StatusNotFound, "entity.not_found")
		return
	}
	delete(c.connectors, r.PathValue("id"))
	w.WriteHeader(http.StatusNoContent)
}

// recipientKey is what the message rate limit counts by: a phone's normalised form.
func recipientKey(to string) string {
	if phoneRegex.MatchString(to) {
		if norm, _, ok := normalizePhone(to); ok {
			return norm
		}
	}
	return to
}

// handleSendCode is POST /api/verification-codes: 204, a new code per recipient (replacing the
// live one); 429 request.message_rate_limited past 10 messages in 10 minutes.
func (c *Core) handleSendCode(w http.ResponseWriter, r *http.Request) {
	to, ok := readParsed(w, r, codeRecipients)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Without a connector of the address's kind Logto answers 501 (connector.not_found).
	for _, addr := range to {
		kind := "Email"
		if phoneRegex.MatchString(addr) {
			kind = "Sms"
		}
		if !c.hasConnector(kind) {
			e := newError(http.StatusNotImplemented, "connector.not_found", kind)
			e.Data = map[string]string{"type": kind}
			e.write(w)
			return
		}
	}
	now := time.Now()
	for _, addr := range to {
		key := recipientKey(addr)
		recent := c.messages[key][:0]
		for _, t := range c.messages[key] {
			if now.Sub(t) < messageLimitWindow {
				recent = append(recent, t)
			}
		}
		c.messages[key] = recent
		if len(recent) >= messageLimit {
			writeError(w, http.StatusTooManyRequests, "request.message_rate_limited")
			return
		}
	}
	for _, addr := range to {
		key := recipientKey(addr)
		c.messages[key] = append(c.messages[key], now)
		code := sixDigits()
		c.passcodes[addr] = &passcode{code: code, createdAt: now}
		c.sent = append(c.sent, SentCode{To: addr, Code: code})
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleCheckCode is POST /api/verification-codes/verify, in Logto's order: no live code →
// not_found; expired; too many tries; wrong code (a try) → code_mismatch; right → consumed, 204.
func (c *Core) handleCheckCode(w http.ResponseWriter, r *http.Request) {
	g := &guard{}
	body, ok := readObjectBody(w, r, g)
	if !ok {
		return
	}
	to := codeRecipients(g, body)
	code, isString := g.str(path{"verificationCode"}, body["verificationCode"])
	if isString && code == "" {
		g.tooSmallIssue(path{"verificationCode"}, 1)
	}
	if g.refused(w) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.passcodes[to[0]]
	switch {
	case p == nil:
		writeError(w, http.StatusBadRequest, "verification_code.not_found")
	case time.Since(p.createdAt) > codeLifetime:
		writeError(w, http.StatusBadRequest, "verification_code.expired")
	case p.tries >= codeMaxTries:
		writeError(w, http.StatusBadRequest, "verification_code.exceed_max_try")
	case p.code != code:
		p.tries++
		writeError(w, http.StatusBadRequest, "verification_code.code_mismatch")
	default:
		delete(c.passcodes, to[0])
		w.WriteHeader(http.StatusNoContent)
	}
}

func sixDigits() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("%06d", n.Int64())
}

// ---- Connectors ----

func (c *Core) handleListConnectors(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []*connector{}
	for _, id := range []string{MockSocialConnectorID, MockEmailConnectorID, MockSMSConnectorID} {
		out = append(out, c.connectors[id])
	}
	writeJSON(w, http.StatusOK, out)
}

func (c *Core) handleGetConnector(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	conn := c.connectors[r.PathValue("id")]
	c.mu.Unlock()
	if conn == nil {
		writeError(w, http.StatusNotFound, "entity.not_found")
		return
	}
	writeJSON(w, http.StatusOK, conn)
}

// handleAuthorizationURI is POST /api/connectors/{connectorId}/authorization-uri: the mock
// social connector's URL with state, redirect_uri and its default scope (exchange 154).
func (c *Core) handleAuthorizationURI(w http.ResponseWriter, r *http.Request) {
	g := &guard{}
	body, ok := readObjectBody(w, r, g)
	if !ok {
		return
	}
	state, _ := g.str(path{"state"}, body["state"])
	redirectURI, _ := g.str(path{"redirectUri"}, body["redirectUri"])
	if g.refused(w) {
		return
	}
	c.mu.Lock()
	conn := c.connectors[r.PathValue("connectorId")]
	c.mu.Unlock()
	switch {
	case conn == nil:
		writeError(w, http.StatusNotFound, "entity.not_found")
		return
	case conn.Type != "Social":
		writeError(w, http.StatusBadRequest, "connector.unexpected_type")
		return
	}
	q := "state=" + url.QueryEscape(state) + "&redirect_uri=" + url.QueryEscape(redirectURI) + "&scope=" + url.QueryEscape("email profile")
	authorize := c.cfg.MockSocialAuthorizeURL
	if strings.HasPrefix(authorize, "/") {
		authorize = baseURL(r) + authorize
	}
	writeJSON(w, http.StatusOK, ordered{{"redirectTo", authorize + "?" + q}})
}

// mockSocialUser is what Logto's mock social connector makes of connectorData: it needs a
// string code (400 connector.invalid_response otherwise, with the data echoed) and takes the
// user id, email and phone from the data.
func mockSocialUser(data map[string]json.RawMessage, raw json.RawMessage) (identity, *apiError) {
	var code string
	if json.Unmarshal(data["code"], &code) != nil || code == "" {
		e := newError(http.StatusBadRequest, "connector.invalid_response")
		compact, _ := marshalNoEscape(json.RawMessage(raw))
		e.Data = ordered{{"message", string(compact)}}
		return identity{}, e
	}
	var userID string
	if json.Unmarshal(data["userId"], &userID) != nil || userID == "" {
		userID = "mock-social-sub-" + code
	}
	details := ordered{{"id", userID}}
	for _, k := range []string{"email", "phone"} {
		var s string
		if json.Unmarshal(data[k], &s) == nil && s != "" {
			details = append(details, member{k, s})
		}
	}
	details = append(details, member{"rawData", raw}) // jsonb orders the keys when the user is shown
	b, _ := marshalNoEscape(details)
	return identity{UserID: userID, Details: b}, nil
}

// handleLinkIdentity is POST /api/users/{userId}/identities {connectorId, connectorData}:
// the connector exchanges the data for the social user, which is linked to the user, replacing
// an identity the user has for the target (exchange 159); 422 when another user has it.
func (c *Core) handleLinkIdentity(w http.ResponseWriter, r *http.Request) {
	g := &guard{}
	body, ok := readObjectBody(w, r, g)
	if !ok {
		return
	}
	connectorID, _ := g.str(path{"connectorId"}, body["connectorId"])
	data := g.object(path{"connectorData"}, body["connectorData"])
	if g.refused(w) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.users[r.PathValue("userId")]
	conn := c.connectors[connectorID]
	if u == nil || conn == nil {
		writeError(w, http.StatusNotFound, "entity.not_found")
		return
	}
	if conn.Type != "Social" {
		e := newError(http.StatusUnprocessableEntity, "session.invalid_connector_id")
		e.Message = fmt.Sprintf(e.Message, connectorID)
		e.write(w)
		return
	}
	id, e := mockSocialUser(data, body["connectorData"])
	if e != nil {
		e.write(w)
		return
	}
	for _, o := range c.users {
		if linked, ok := o.identities[conn.Target]; ok && o.id != u.id && linked.UserID == id.UserID {
			writeError(w, http.StatusUnprocessableEntity, "user.identity_already_in_use")
			return
		}
	}
	u.identities[conn.Target] = id
	u.touch()
	identities, err := jsonb(u.identities)
	if err != nil {
		writeInternalError(w)
		return
	}
	writeJSON(w, http.StatusOK, identities)
}
