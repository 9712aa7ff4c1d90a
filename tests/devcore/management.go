package devcore

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// management wraps a Management API handler: count the call under its route pattern, then
// authenticate it like Logto's koaAuth (section 7.1 of logto-account-api.md).
func (c *Core) management(pattern string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.stats.Management[pattern]++
		delay := c.mgmtDelay
		c.mu.Unlock()
		time.Sleep(delay)
		if e := c.authorizeManagement(r); e != nil {
			e.write(w)
			return
		}
		h(w, r)
	})
}

// authorizeManagement accepts an unexpired JWT signed by one of this core's keys, issued by this
// core for the Management API resource, with scope "all". The order of the checks and the error
// codes are Logto's.
func (c *Core) authorizeManagement(r *http.Request) *apiError {
	header := r.Header.Get("Authorization")
	if header == "" {
		return newError(http.StatusUnauthorized, "auth.authorization_header_missing")
	}
	// Logto tests the prefix "Bearer" and slices one more character for the space.
	if !strings.HasPrefix(header, "Bearer") {
		e := newError(http.StatusUnauthorized, "auth.authorization_token_type_not_supported")
		e.Data = ordered{{"supportedTypes", []string{"Bearer"}}}
		return e
	}
	token := strings.TrimPrefix(strings.TrimPrefix(header, "Bearer"), " ")

	c.mu.Lock()
	keys := slices.Clone(c.keys)
	c.mu.Unlock()
	claims, err := verifyJWT(token, keys)
	if err != nil || claims.Exp == nil || time.Now().Unix() >= *claims.Exp ||
		claims.Iss != c.issuer(r) || !claims.hasAudience(c.cfg.ManagementResource) {
		return newError(http.StatusUnauthorized, "auth.unauthorized")
	}
	if claims.Sub == "" {
		return newError(http.StatusUnauthorized, "auth.jwt_sub_missing")
	}
	if !slices.Contains(strings.Fields(claims.Scope), "all") {
		return newError(http.StatusForbidden, "auth.forbidden")
	}
	return nil
}

// ---- Account center (section 2) ----

// accountCenterFieldKeys are the keys of accountCenter.fields Logto 1.42 keeps, in its schema
// order. Others (e.g. trustedDevice without dev features) are stripped, as exchange 1 of the
// step-up samples shows.
var accountCenterFieldKeys = []string{
	"name", "avatar", "profile", "email", "phone", "password", "username", "social", "customData",
	"mfa", "passkey", "session",
}

var accountCenterValues = []string{"Off", "ReadOnly", "Edit"}

// accountCenter is the single account_centers row of the default tenant.
type accountCenter struct {
	enabled                bool
	fields                 map[string]string
	webauthnRelatedOrigins []string
	deleteAccountURL       *string
	customCSS              *string
	profileFields          []json.RawMessage // nil is null
}

// body renders the row as exchange 0 shows it.
func (a accountCenter) body() ordered {
	fields := ordered{}
	for _, k := range accountCenterFieldKeys {
		if v, ok := a.fields[k]; ok {
			fields = append(fields, member{k, v})
		}
	}
	var profileFields any // null unless set
	if a.profileFields != nil {
		profileFields = a.profileFields
	}
	return ordered{
		{"tenantId", "default"},
		{"id", "default"},
		{"enabled", a.enabled},
		{"fields", fields},
		{"webauthnRelatedOrigins", append([]string{}, a.webauthnRelatedOrigins...)},
		{"deleteAccountUrl", a.deleteAccountURL},
		{"customCss", a.customCSS},
		{"profileFields", profileFields},
	}
}

func (c *Core) handleGetAccountCenter(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	body := c.accountCenter.body()
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

// handlePatchAccountCenter updates in JSON replace mode: a provided fields object replaces the
// stored one whole; omitted top-level keys stay as they are.
func (c *Core) handlePatchAccountCenter(w http.ResponseWriter, r *http.Request) {
	raw, ok := readJSONBody(w, r)
	if !ok {
		return
	}
	g := &guard{}
	body := g.object(nil, raw)
	if body == nil {
		g.err().write(w)
		return
	}

	var enabled *bool
	if v, ok := body["enabled"]; ok {
		if zodType(v) != "boolean" {
			g.typeIssue(path{"enabled"}, "boolean", v)
		} else {
			b := string(v) == "true"
			enabled = &b
		}
	}
	var fields map[string]string
	if v, ok := body["fields"]; ok {
		if obj := g.object(path{"fields"}, v); obj != nil {
			fields = map[string]string{}
			for _, k := range accountCenterFieldKeys {
				fv, present := obj[k]
				if !present {
					continue
				}
				p := path{"fields", k}
				if zodType(fv) != "string" {
					g.typeIssue(p, "'Off' | 'ReadOnly' | 'Edit'", fv)
					continue
				}
				s, _ := g.str(p, fv)
				if !slices.Contains(accountCenterValues, s) {
					g.enumIssue(p, accountCenterValues, s)
					continue
				}
				fields[k] = s
			}
		}
	}
	var origins []string
	_, setOrigins := body["webauthnRelatedOrigins"]
	if setOrigins {
		v := body["webauthnRelatedOrigins"]
		if zodType(v) != "array" {
			g.typeIssue(path{"webauthnRelatedOrigins"}, "array", v)
		} else {
			var items []json.RawMessage
			_ = json.Unmarshal(v, &items)
			origins = []string{}
			for i, item := range items {
				if s, ok := g.str(path{"webauthnRelatedOrigins", i}, item); ok && !slices.Contains(origins, s) {
					origins = append(origins, s) // Logto deduplicates on write
				}
			}
		}
	}
	deleteURL, setDeleteURL := g.nullableURL(body, "deleteAccountUrl")
	var css *string
	_, setCSS := body["customCss"]
	if setCSS && zodType(body["customCss"]) != "null" {
		if s, ok := g.str(path{"customCss"}, body["customCss"]); ok {
			css = &s
		}
	}
	var profileFields []json.RawMessage
	_, setProfileFields := body["profileFields"]
	if setProfileFields && zodType(body["profileFields"]) != "null" {
		profileFields = g.profileFields(body["profileFields"])
	}
	if g.refused(w) {
		return
	}
	if dup := duplicateProfileField(profileFields); dup != "" {
		e := newError(http.StatusBadRequest, "request.invalid_input", "Duplicate profile field names: "+dup)
		e.Details = "Duplicate profile field names: " + dup
		e.write(w)
		return
	}

	c.mu.Lock()
	ac := &c.accountCenter
	if enabled != nil {
		ac.enabled = *enabled
	}
	if fields != nil {
		ac.fields = fields
	}
	if setOrigins {
		ac.webauthnRelatedOrigins = origins
	}
	if setDeleteURL {
		ac.deleteAccountURL = deleteURL
	}
	if setCSS {
		ac.customCSS = css
	}
	if setProfileFields {
		ac.profileFields = profileFields
	}
	resp := ac.body()
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

// nullableURL reads deleteAccountUrl: null, "" (stored as null) or an http(s) URL of at
// most 2048 characters.
func (g *guard) nullableURL(body map[string]json.RawMessage, key string) (*string, bool) {
	v, ok := body[key]
	if !ok {
		return nil, false
	}
	if zodType(v) == "null" {
		return nil, true
	}
	s, isString := g.str(path{key}, v)
	if !isString {
		return nil, false
	}
	if s == "" {
		return nil, true
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(s) > 2048 {
		g.stringIssue(path{key}, "url")
		return nil, false
	}
	return &s, true
}

// profileFields reads profileFields: an array of {name: string} (extra keys dropped).
func (g *guard) profileFields(raw json.RawMessage) []json.RawMessage {
	if zodType(raw) != "array" {
		g.typeIssue(path{"profileFields"}, "array", raw)
		return nil
	}
	var items []json.RawMessage
	_ = json.Unmarshal(raw, &items)
	out := []json.RawMessage{}
	for i, item := range items {
		obj := g.object(path{"profileFields", i}, item)
		if obj == nil {
			continue
		}
		name, ok := g.str(path{"profileFields", i, "name"}, obj["name"])
		if !ok {
			continue
		}
		b, _ := marshalNoEscape(ordered{{"name", name}})
		out = append(out, b)
	}
	return out
}

func duplicateProfileField(fields []json.RawMessage) string {
	seen := map[string]bool{}
	for _, f := range fields {
		var v struct{ Name string }
		_ = json.Unmarshal(f, &v)
		if seen[v.Name] {
			return v.Name
		}
		seen[v.Name] = true
	}
	return ""
}

// ---- Sign-in experience ----

func (c *Core) handleGetSignInExp(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	body := slices.Clone(c.signInExp)
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

// handlePatchSignInExp replaces the provided top-level keys (a shallow merge), which is all tests
// need to switch policies. Unknown keys, tenantId and id are ignored; a value must keep the JSON
// type of the stored one (null may replace or be replaced by anything).
func (c *Core) handlePatchSignInExp(w http.ResponseWriter, r *http.Request) {
	raw, ok := readJSONBody(w, r)
	if !ok {
		return
	}
	g := &guard{}
	if g.object(nil, raw) == nil {
		g.err().write(w)
		return
	}
	patch, _ := decodeOrdered(raw)

	c.mu.Lock()
	defer c.mu.Unlock()
	var updates ordered
	for _, m := range patch {
		current, known := c.signInExp.get(m.Key).(json.RawMessage)
		if !known || m.Key == "tenantId" || m.Key == "id" {
			continue
		}
		v := m.Value.(json.RawMessage)
		if want, got := zodType(current), zodType(v); want != got && want != "null" && got != "null" {
			g.typeIssue(path{m.Key}, want, v)
			continue
		}
		if m.Key == "mfa" {
			g.mfaPolicy(v)
		}
		updates = append(updates, m)
	}
	if g.refused(w) {
		return
	}
	if e := mfaPolicyRefusal(patch); e != nil {
		e.write(w)
		return
	}
	for _, m := range updates {
		c.signInExp = c.signInExp.set(m.Key, m.Value)
	}
	writeJSON(w, http.StatusOK, slices.Clone(c.signInExp))
}

// usernameCaseSensitive reads usernamePolicy.caseSensitive (Logto's default: true). Callers hold
// c.mu.
func (c *Core) usernameCaseSensitive() bool {
	raw, _ := c.signInExp.get("usernamePolicy").(json.RawMessage)
	var policy struct {
		CaseSensitive *bool `json:"caseSensitive"`
	}
	if json.Unmarshal(raw, &policy) != nil || policy.CaseSensitive == nil {
		return true
	}
	return *policy.CaseSensitive
}

// ---- Applications ----

// application is an OIDC client as GET /api/applications/{id} shows it (exchange 43).
type application struct {
	TenantID                     string          `json:"tenantId"`
	ID                           string          `json:"id"`
	Name                         string          `json:"name"`
	Secret                       string          `json:"secret"`
	Description                  *string         `json:"description"`
	Type                         string          `json:"type"`
	OIDCClientMetadata           json.RawMessage `json:"oidcClientMetadata"`
	CustomClientMetadata         json.RawMessage `json:"customClientMetadata"`
	ProtectedAppMetadata         json.RawMessage `json:"protectedAppMetadata"`
	CustomData                   json.RawMessage `json:"customData"`
	IsThirdParty                 bool            `json:"isThirdParty"`
	AppLevelAccessControlEnabled bool            `json:"appLevelAccessControlEnabled"`
	CreatedAt                    int64           `json:"createdAt"`
	IsAdmin                      bool            `json:"isAdmin"`
}

func (c *Core) handleGetApplication(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	app := c.apps[r.PathValue("id")]
	c.mu.Unlock()
	if app == nil {
		writeError(w, http.StatusNotFound, "entity.not_found")
		return
	}
	writeJSON(w, http.StatusOK, app)
}
