package devcore

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// user is a row of Logto's users table, reduced to what the Management API shows.
type user struct {
	id           string
	username     *string
	primaryEmail *string
	primaryPhone *string
	name         *string
	avatar       *string
	customData   json.RawMessage // always a JSON object, kept in jsonb key order
	identities   map[string]identity
	lastSignInAt *int64
	createdAt    int64
	updatedAt    int64
	profile      profile
	appID        *string
	isSuspended  bool
	// The password is stored salted and hashed: a dev core needs no slow hash, but it should not
	// keep plaintext either.
	passwordSalt []byte
	passwordHash []byte
	// The MFA columns (mfa.go): not part of the user body, as in Logto.
	mfaVerifications []mfaFactor
	logtoConfig      logtoConfig
}

// identity is one social identity, keyed by connector target.
type identity struct {
	UserID  string          `json:"userId"`
	Details json.RawMessage `json:"details,omitempty"`
}

// body renders the user like GET /api/users/{userId} (exchange 35): the column order of Logto's
// userInfoSelectFields, then hasPassword, then ssoIdentities when asked for.
func (u *user) body(withSSO bool) ordered {
	identities, err := jsonb(u.identities)
	if err != nil || len(u.identities) == 0 {
		identities = json.RawMessage("{}")
	}
	b := ordered{
		{"id", u.id},
		{"username", u.username},
		{"primaryEmail", u.primaryEmail},
		{"primaryPhone", u.primaryPhone},
		{"name", u.name},
		{"avatar", u.avatar},
		{"customData", u.customData},
		{"identities", identities},
		{"lastSignInAt", u.lastSignInAt},
		{"createdAt", u.createdAt},
		{"updatedAt", u.updatedAt},
		{"profile", u.profile.body()},
		{"applicationId", u.appID},
		{"cimdClientId", nil},
		{"isSuspended", u.isSuspended},
		{"hasPassword", u.passwordHash != nil},
	}
	if withSSO {
		b = append(b, member{"ssoIdentities", []any{}})
	}
	return b
}

// touch bumps updatedAt, strictly, so a test can always see that an update happened.
func (u *user) touch() {
	now := time.Now().UnixMilli()
	if now <= u.updatedAt {
		now = u.updatedAt + 1
	}
	u.updatedAt = now
}

func (u *user) setPassword(password string) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		panic(err)
	}
	u.passwordSalt = salt
	u.passwordHash = hashPassword(salt, password)
}

func (u *user) passwordMatches(password string) bool {
	if u.passwordHash == nil {
		return false
	}
	return subtle.ConstantTimeCompare(hashPassword(u.passwordSalt, password), u.passwordHash) == 1
}

func hashPassword(salt []byte, password string) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(password))
	return h.Sum(nil)
}

// ---- Profile (standard OIDC claims) ----

// Logto's userProfileGuard keys, in its schema order: zod rebuilds the object in this order,
// which is why exchange 41 answers website before locale.
var (
	profileKeys = []string{"familyName", "givenName", "middleName", "nickname", "preferredUsername",
		"profile", "website", "gender", "birthdate", "zoneinfo", "locale"}
	addressKeys = []string{"formatted", "streetAddress", "locality", "region", "postalCode", "country"}
)

// profile holds the string claims and the optional address claim.
type profile struct {
	claims  map[string]string
	address map[string]string // nil: no address
}

func (p profile) body() ordered {
	out := ordered{}
	for _, k := range profileKeys {
		if v, ok := p.claims[k]; ok {
			out = append(out, member{k, v})
		}
	}
	if p.address != nil {
		addr := ordered{}
		for _, k := range addressKeys {
			if v, ok := p.address[k]; ok {
				addr = append(addr, member{k, v})
			}
		}
		out = append(out, member{"address", addr})
	}
	return out
}

// merged is p with the claims of q on top; a provided address replaces the stored one whole.
func (p profile) merged(q profile) profile {
	out := profile{claims: map[string]string{}, address: p.address}
	for k, v := range p.claims {
		out.claims[k] = v
	}
	for k, v := range q.claims {
		out.claims[k] = v
	}
	if q.address != nil {
		out.address = q.address
	}
	return out
}

// profile validates a userProfileGuard object: string claims, an address object of strings;
// unknown keys are dropped.
func (g *guard) profile(p path, raw json.RawMessage) (profile, bool) {
	before := len(g.issues)
	obj := g.object(p, raw)
	if obj == nil {
		return profile{}, false
	}
	out := profile{claims: map[string]string{}}
	for _, k := range profileKeys {
		if v, ok := obj[k]; ok {
			if s, ok := g.str(p.with(k), v); ok {
				out.claims[k] = s
			}
		}
	}
	if v, ok := obj["address"]; ok {
		if addr := g.object(p.with("address"), v); addr != nil {
			out.address = map[string]string{}
			for _, k := range addressKeys {
				if av, ok := addr[k]; ok {
					if s, ok := g.str(p.with("address").with(k), av); ok {
						out.address[k] = s
					}
				}
			}
		}
	}
	return out, len(g.issues) == before
}

// ---- Body validation shared by create and update ----

// Logto's identifier regexes (the Management API applies them in its body guard). Go's \w and
// \S are ASCII-only like JavaScript's \w; JavaScript's \S also excludes Unicode spaces, a
// difference that does not matter for a dev core.
var (
	usernameRegex = regexp.MustCompile(`^[A-Z_a-z]\w*$`)
	emailRegex    = regexp.MustCompile(`^\S+@\S+\.\S+$`)
	phoneRegex    = regexp.MustCompile(`^\d+$`)
)

func matches(re *regexp.Regexp) func(string) string {
	return func(s string) string {
		if re.MatchString(s) {
			return ""
		}
		return "regex"
	}
}

// isURL mirrors zod's url() check, which accepts whatever `new URL()` parses: an absolute URL.
func isURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "" && u.Path == "") {
		return "url"
	}
	return ""
}

// userFields are the writable columns of PATCH /api/users/{userId} and POST /api/users.
type userFields struct {
	username, primaryEmail, primaryPhone, name, avatar nullableString
	customData                                         json.RawMessage // nil: not provided
	profile                                            *profile
	password                                           *string // create only
}

func (f userFields) empty() bool {
	return !f.username.set && !f.primaryEmail.set && !f.primaryPhone.set && !f.name.set &&
		!f.avatar.set && f.customData == nil && f.profile == nil && f.password == nil
}

// parsePatchUser validates the body guard of PATCH /api/users/{userId}: every key optional,
// identifiers and name/avatar nullable and allowed to be "", customData any object.
func parsePatchUser(g *guard, body map[string]json.RawMessage) userFields {
	f := userFields{
		username:     g.nullableStr(body, "username", matches(usernameRegex)),
		primaryEmail: g.nullableStr(body, "primaryEmail", matches(emailRegex)),
		primaryPhone: g.nullableStr(body, "primaryPhone", matches(phoneRegex)),
		name:         g.nullableStr(body, "name", nil),
		avatar:       g.nullableStr(body, "avatar", isURL),
	}
	parseJSONFields(g, body, &f)
	return f
}

// parseCreateUser validates the body guard of POST /api/users: identifiers and name are plain
// (non-null) strings there.
func parseCreateUser(g *guard, body map[string]json.RawMessage) userFields {
	f := userFields{
		username:     g.requiredStr(body, "username", matches(usernameRegex)),
		primaryEmail: g.requiredStr(body, "primaryEmail", matches(emailRegex)),
		primaryPhone: g.requiredStr(body, "primaryPhone", matches(phoneRegex)),
		name:         g.requiredStr(body, "name", nil),
		avatar:       g.nullableStr(body, "avatar", isURL),
	}
	if v, ok := body["password"]; ok {
		if s, ok := g.str(path{"password"}, v); ok {
			if s == "" {
				g.tooSmallIssue(path{"password"}, 1)
			} else {
				f.password = &s
			}
		}
	}
	parseJSONFields(g, body, &f)
	return f
}

func parseJSONFields(g *guard, body map[string]json.RawMessage, f *userFields) {
	if v, ok := body["customData"]; ok {
		if g.object(path{"customData"}, v) != nil {
			f.customData = v
		}
	}
	if v, ok := body["profile"]; ok {
		if p, ok := g.profile(path{"profile"}, v); ok {
			f.profile = &p
		}
	}
}

// requiredStr validates an optional, non-nullable string key.
func (g *guard) requiredStr(body map[string]json.RawMessage, key string, check func(string) string) nullableString {
	raw, ok := body[key]
	if !ok {
		return nullableString{}
	}
	s, ok := g.str(path{key}, raw)
	if !ok {
		return nullableString{}
	}
	if check != nil {
		if failed := check(s); failed != "" {
			g.stringIssue(path{key}, failed)
			return nullableString{}
		}
	}
	return nullableString{set: true, value: &s}
}

// emptyIsNull: Logto stores "" identifiers as null (step-up exchange 147: primaryPhone "").
func emptyIsNull(v nullableString) nullableString {
	if v.value != nil && *v.value == "" {
		v.value = nil
	}
	return v
}

// normalizePhone is Logto 1.42's phone handling: the digits are read as an international number
// and stored as country code + national number, so a trunk 0 after the country code goes away.
// It also returns the "country code + 0 + national" form Logto treats as the same number when it
// looks for collisions. ok is false for what libphonenumber cannot parse.
func normalizePhone(digits string) (normalized, withZero string, ok bool) {
	num, err := phonenumbers.Parse("+"+digits, "")
	if err != nil {
		return "", "", false
	}
	cc := fmt.Sprint(num.GetCountryCode())
	national := phonenumbers.GetNationalSignificantNumber(num)
	return cc + national, cc + "0" + national, true
}

// conflict returns the 422 for an identifier another user already has, or nil. Checked in
// Logto's order: username, email, phone. Callers hold c.mu.
func (c *Core) conflict(excludeID string, f userFields) *apiError {
	caseSensitive := c.usernameCaseSensitive()
	sameUsername := func(a, b string) bool {
		if caseSensitive {
			return a == b
		}
		return strings.EqualFold(a, b)
	}
	var phoneForms []string
	if f.primaryPhone.value != nil && *f.primaryPhone.value != "" {
		p := *f.primaryPhone.value
		phoneForms = []string{p}
		if norm, zero, ok := normalizePhone(p); ok {
			phoneForms = append(phoneForms, norm, zero)
		}
	}
	checks := []struct {
		code  string
		taken func(*user) bool
	}{
		{"user.username_already_in_use", func(o *user) bool {
			v := f.username.value
			return v != nil && *v != "" && o.username != nil && sameUsername(*o.username, *v)
		}},
		{"user.email_already_in_use", func(o *user) bool {
			v := f.primaryEmail.value
			return v != nil && *v != "" && o.primaryEmail != nil && strings.EqualFold(*o.primaryEmail, *v)
		}},
		{"user.phone_already_in_use", func(o *user) bool {
			for _, p := range phoneForms {
				if o.primaryPhone != nil && *o.primaryPhone == p {
					return true
				}
			}
			return false
		}},
	}
	for _, check := range checks {
		for _, o := range c.users {
			if o.id != excludeID && check.taken(o) {
				return newError(http.StatusUnprocessableEntity, check.code)
			}
		}
	}
	return nil
}

// prepare finishes a validated write the way the database would: "" identifiers become null,
// phones are normalised (422 user.invalid_phone), and varchar limits give 422
// entity.value_too_long.
// admit runs the core's checks of new user values, collisions (422) then the database's own rules,
// and answers a refusal. excludeID is the user being changed; the caller holds c.mu.
func (c *Core) admit(w http.ResponseWriter, excludeID string, f userFields) (userFields, bool) {
	if e := c.conflict(excludeID, f); e != nil {
		e.write(w)
		return f, false
	}
	f, e := prepare(f)
	if e != nil {
		e.write(w)
		return f, false
	}
	return f, true
}

func prepare(f userFields) (userFields, *apiError) {
	f.username = emptyIsNull(f.username)
	f.primaryEmail = emptyIsNull(f.primaryEmail)
	f.primaryPhone = emptyIsNull(f.primaryPhone)
	if p := f.primaryPhone.value; p != nil {
		norm, _, ok := normalizePhone(*p)
		if !ok {
			return f, newError(http.StatusUnprocessableEntity, "user.invalid_phone")
		}
		f.primaryPhone.value = &norm
	}
	limits := []struct {
		v   nullableString
		max int
	}{{f.username, 128}, {f.primaryEmail, 128}, {f.primaryPhone, 128}, {f.name, 128}, {f.avatar, 2048}}
	for _, l := range limits {
		if l.v.value != nil && utf8.RuneCountInString(*l.v.value) > l.max {
			return f, newError(http.StatusUnprocessableEntity, "entity.value_too_long")
		}
	}
	return f, nil
}

// apply writes the provided fields onto u (JSON replace mode: customData and profile whole).
func (u *user) apply(f userFields) error {
	for _, field := range []struct {
		v   nullableString
		dst **string
	}{
		{f.username, &u.username}, {f.primaryEmail, &u.primaryEmail}, {f.primaryPhone, &u.primaryPhone},
		{f.name, &u.name}, {f.avatar, &u.avatar},
	} {
		if field.v.set {
			*field.dst = field.v.value
		}
	}
	if f.customData != nil {
		cd, err := jsonb(f.customData)
		if err != nil {
			return err
		}
		u.customData = cd
	}
	if f.profile != nil {
		u.profile = *f.profile
	}
	if f.password != nil {
		u.setPassword(*f.password)
	}
	return nil
}

// ---- Handlers ----

// readObjectBody reads a JSON object body, answering 400 for anything else.
func readObjectBody(w http.ResponseWriter, r *http.Request, g *guard) (map[string]json.RawMessage, bool) {
	raw, ok := readJSONBody(w, r)
	if !ok {
		return nil, false
	}
	body := g.object(nil, raw)
	if body == nil {
		g.err().write(w)
		return nil, false
	}
	return body, true
}

// readParsed reads a JSON-object body and parses it with parse, answering Logto's 400 when the
// body or any member is invalid.
func readParsed[T any](w http.ResponseWriter, r *http.Request, parse func(*guard, map[string]json.RawMessage) T) (T, bool) {
	g := &guard{}
	var v T
	body, ok := readObjectBody(w, r, g)
	if !ok {
		return v, false
	}
	v = parse(g, body)
	return v, !g.refused(w)
}

// withPathUser answers a Management API write to one user in Logto's order: the body (400,
// read by parse), then the path's user (404); fn runs with the user under the core's lock.
func withPathUser[T any](c *Core, w http.ResponseWriter, r *http.Request, parse func(*guard, map[string]json.RawMessage) T, fn func(*user, T)) {
	v, ok := readParsed(w, r, parse)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if u := c.pathUser(w, r); u != nil {
		fn(u, v)
	}
}

func (c *Core) handleCreateUser(w http.ResponseWriter, r *http.Request) {
	f, ok := readParsed(w, r, parseCreateUser)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok = c.admit(w, "", f)
	if !ok {
		return
	}
	id := randomString(idAlphabet, 12)
	for c.users[id] != nil {
		id = randomString(idAlphabet, 12)
	}
	now := time.Now().UnixMilli()
	u := &user{id: id, customData: json.RawMessage("{}"), identities: map[string]identity{},
		createdAt: now, updatedAt: now, profile: profile{claims: map[string]string{}}}
	if err := u.apply(f); err != nil {
		writeInternalError(w)
		return
	}
	c.users[id] = u
	writeJSON(w, http.StatusOK, u.body(false))
}

func (c *Core) handleGetUser(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.pathUser(w, r)
	if u == nil {
		return
	}
	writeJSON(w, http.StatusOK, u.body(truthy(r.URL.Query().Get("includeSsoIdentities"))))
}

// pathUser returns the user named by the {userId} path value, or answers 404 and returns nil.
// The caller holds c.mu.
func (c *Core) pathUser(w http.ResponseWriter, r *http.Request) *user {
	u := c.users[r.PathValue("userId")]
	if u == nil {
		writeError(w, http.StatusNotFound, "entity.not_found")
	}
	return u
}

// truthy is Logto's reading of boolean query parameters.
func truthy(v string) bool { return v == "true" || v == "1" || v == "yes" }

// handlePatchUser: guard (400), user (404), collisions (422), then the database's own refusals.
func (c *Core) handlePatchUser(w http.ResponseWriter, r *http.Request) {
	withPathUser(c, w, r, parsePatchUser, func(u *user, f userFields) {
		if f.empty() {
			// An UPDATE with nothing to set: what exchange 27 shows Logto answering.
			writeError(w, http.StatusUnprocessableEntity, "entity.invalid_input")
			return
		}
		f, ok := c.admit(w, u.id, f)
		if !ok {
			return
		}
		if err := u.apply(f); err != nil {
			writeInternalError(w)
			return
		}
		u.touch()
		writeJSON(w, http.StatusOK, u.body(false))
	})
}

// handlePatchProfile merges {profile} into the stored claims and answers the stored profile.
func (c *Core) handlePatchProfile(w http.ResponseWriter, r *http.Request) {
	g := &guard{}
	body, ok := readObjectBody(w, r, g)
	if !ok {
		return
	}
	var p profile
	if raw, ok := body["profile"]; ok {
		p, _ = g.profile(path{"profile"}, raw)
	} else {
		g.typeIssue(path{"profile"}, "object", nil)
	}
	if g.refused(w) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.pathUser(w, r)
	if u == nil {
		return
	}
	u.profile = u.profile.merged(p)
	u.touch()
	writeJSON(w, http.StatusOK, u.profile.body())
}

// readPassword validates {password: string, min 1}.
func readPassword(w http.ResponseWriter, r *http.Request) (string, bool) {
	g := &guard{}
	body, ok := readObjectBody(w, r, g)
	if !ok {
		return "", false
	}
	raw, present := body["password"]
	password, isString := g.str(path{"password"}, raw)
	if present && isString && password == "" {
		g.tooSmallIssue(path{"password"}, 1)
	}
	if g.refused(w) {
		return "", false
	}
	return password, true
}

// handleVerifyPassword: 204 on a match, 422 session.invalid_credentials otherwise (also for a
// user without a password), 404 for an unknown user (exchanges 37, 38).
func (c *Core) handleVerifyPassword(w http.ResponseWriter, r *http.Request) {
	password, ok := readPassword(w, r)
	if !ok {
		return
	}
	c.mu.Lock()
	u := c.users[r.PathValue("userId")]
	match := u != nil && u.passwordMatches(password)
	c.mu.Unlock()
	switch {
	case u == nil:
		writeError(w, http.StatusNotFound, "entity.not_found")
	case !match:
		writeError(w, http.StatusUnprocessableEntity, "session.invalid_credentials")
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// handlePatchPassword sets a password without any policy check, as Logto's Management API does
// (step-up exchange 149 sets "1").
func (c *Core) handlePatchPassword(w http.ResponseWriter, r *http.Request) {
	password, ok := readPassword(w, r)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.pathUser(w, r)
	if u == nil {
		return
	}
	u.setPassword(password)
	u.touch()
	writeJSON(w, http.StatusOK, u.body(false))
}

// handlePatchIsSuspended is PATCH /api/users/{userId}/is-suspended, as Logto's: it sets the
// flag and, when it suspends, revokes the user's refresh tokens (revokeInstanceByUserId
// ('refreshToken')); access tokens live on until they expire. A suspended user cannot sign in,
// and password verification answers 401 user.suspended.
func (c *Core) handlePatchIsSuspended(w http.ResponseWriter, r *http.Request) {
	withPathUser(c, w, r, parseIsSuspended, func(u *user, suspended bool) {
		u.isSuspended = suspended
		if suspended {
			for _, t := range c.tokens {
				if t.kind == kindRefresh && t.subject == u.id {
					t.revoked = true
				}
			}
		}
		u.touch()
		writeJSON(w, http.StatusOK, u.body(false))
	})
}

// parseIsSuspended reads {isSuspended: boolean}, which is required.
func parseIsSuspended(g *guard, body map[string]json.RawMessage) bool {
	b := g.optionalBool(path{"isSuspended"}, body)
	if b == nil {
		if _, present := body["isSuspended"]; !present {
			g.typeIssue(path{"isSuspended"}, "boolean", nil)
		}
		return false
	}
	return *b
}

// handlePutIdentity links or replaces the identity of a connector target: 201 when it is new,
// 200 when it replaces one; the answer is the user's identities map.
func (c *Core) handlePutIdentity(w http.ResponseWriter, r *http.Request) {
	g := &guard{}
	body, ok := readObjectBody(w, r, g)
	if !ok {
		return
	}
	socialID, _ := g.str(path{"userId"}, body["userId"])
	var details json.RawMessage
	if raw, ok := body["details"]; ok && g.object(path{"details"}, raw) != nil {
		details = raw
	}
	if g.refused(w) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.pathUser(w, r)
	if u == nil {
		return
	}
	target := r.PathValue("target")
	for _, o := range c.users {
		if linked, ok := o.identities[target]; ok && o.id != u.id && linked.UserID == socialID {
			writeError(w, http.StatusUnprocessableEntity, "user.identity_already_in_use")
			return
		}
	}
	_, existed := u.identities[target]
	u.identities[target] = identity{UserID: socialID, Details: details}
	u.touch()
	status := http.StatusCreated
	if existed {
		status = http.StatusOK
	}
	identities, err := jsonb(u.identities)
	if err != nil {
		writeInternalError(w)
		return
	}
	writeJSON(w, status, identities)
}

// handleDeleteIdentity unlinks a connector target: 200 with the user, 404
// user.identity_not_exist when it is not linked (step-up exchanges 166, 167).
func (c *Core) handleDeleteIdentity(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.pathUser(w, r)
	if u == nil {
		return
	}
	target := r.PathValue("target")
	if _, ok := u.identities[target]; !ok {
		writeError(w, http.StatusNotFound, "user.identity_not_exist")
		return
	}
	delete(u.identities, target)
	u.touch()
	writeJSON(w, http.StatusOK, u.body(false))
}
