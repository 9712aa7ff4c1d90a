package devcore

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// seed fills a new core: applications, two users, the account center and the sign-in
// experience.
func (c *Core) seed() {
	now := time.Now().UnixMilli()
	emptyObject := json.RawMessage("{}")
	noRedirects := json.RawMessage(`{"redirectUris":[],"postLogoutRedirectUris":[]}`)
	app := func(id, name, secret, description, typ string, thirdParty bool, createdAt int64) *application {
		return &application{
			TenantID: "default", ID: id, Name: name, Secret: secret, Description: &description, Type: typ,
			OIDCClientMetadata: noRedirects, CustomClientMetadata: emptyObject,
			ProtectedAppMetadata: json.RawMessage("null"), CustomData: emptyObject,
			IsThirdParty: thirdParty, CreatedAt: createdAt,
		}
	}
	c.apps = map[string]*application{
		// Logto's built-in Live Preview SPA, exactly as exchange 43 shows it.
		DemoAppID: app(DemoAppID, "Live Preview", "N/A", "Preview for Sign-in Experience.", "SPA", false, 0),
		c.cfg.ClientID: app(c.cfg.ClientID, "Account API gateway", c.cfg.ClientSecret,
			"Machine-to-machine app of the Account API gateway (dev core seed).", "MachineToMachine", false, now),
		ThirdPartyAppID: app(ThirdPartyAppID, "Third-party app", "N/A",
			"A third-party application (dev core seed).", "Traditional", true, now),
		FirstPartyWebAppID: app(FirstPartyWebAppID, "First-party web app", "N/A",
			"A first-party traditional web application (dev core seed).", "Traditional", false, now),
	}
	// The web app has back-channel logout with the session id, so its tokens carry sid (and its
	// introspection answers too): the only way an edge can tell which session a token is from.
	c.apps[FirstPartyWebAppID].OIDCClientMetadata = json.RawMessage(`{"redirectUris":[],"postLogoutRedirectUris":[],` +
		`"backchannelLogoutUri":"http://127.0.0.1/backchannel-logout","backchannelLogoutSessionRequired":true}`)
	// The account page's Single Page application (a public client: no secret, PKCE).
	page := app(AccountPageAppID, "Account page", "N/A", "The account page served by the Account API module (dev core seed).", "SPA", false, now)
	page.OIDCClientMetadata = accountPageRedirects(c.cfg.AccountPageURLs)
	c.apps[AccountPageAppID] = page
	// Only the machine-to-machine app authenticates at the token and introspection endpoints.
	c.clients[c.cfg.ClientID] = c.cfg.ClientSecret

	str := func(s string) *string { return &s }
	demoApp := str(DemoAppID)
	demo := &user{
		id: DemoUserID, username: str(DemoUsername), primaryEmail: str(DemoEmail), name: str("Demo User"),
		customData: emptyObject, identities: map[string]identity{}, createdAt: now, updatedAt: now,
		profile: profile{claims: map[string]string{}}, appID: demoApp,
	}
	demo.setPassword(DemoPassword)
	other := &user{
		id: OtherUserID, username: str(OtherUsername), primaryEmail: str(OtherEmail), name: str("Oracle"),
		customData: emptyObject, identities: map[string]identity{}, createdAt: now, updatedAt: now,
		profile: profile{claims: map[string]string{}}, appID: demoApp,
	}
	other.setPassword(OtherPassword)
	c.users[demo.id] = demo
	c.users[other.id] = other

	// Enabled with the nine SEED fields editable, so the Account API works out of the box.
	c.accountCenter = accountCenter{enabled: true, fields: map[string]string{}, webauthnRelatedOrigins: []string{}}
	for _, k := range accountCenterFieldKeys[:9] {
		c.accountCenter.fields[k] = "Edit"
	}
	for k, v := range c.cfg.AccountCenterFields {
		if !slices.Contains(accountCenterFieldKeys, k) || !slices.Contains(accountCenterValues, v) {
			panic(fmt.Sprintf("devcore: account center field %q: %q (controls: %v)", k, v, accountCenterValues))
		}
		c.accountCenter.fields[k] = v
	}

	sie, err := decodeOrdered([]byte(seedSignInExperience))
	if err != nil {
		panic("devcore: bad seed sign-in experience: " + err.Error())
	}
	c.signInExp = sie
	if len(c.cfg.MfaFactors) > 0 {
		mfa, err := json.Marshal(ordered{{"factors", c.cfg.MfaFactors}, {"policy", "PromptAtSignInAndSignUp"}})
		if err != nil {
			panic(err)
		}
		c.signInExp = c.signInExp.set("mfa", json.RawMessage(mfa))
	}
}

// seedSignInExperience is exchange 42 (Logto 1.42 defaults) with the recording's test-run
// blocklist entry removed.
const seedSignInExperience = `{
  "tenantId": "default",
  "id": "default",
  "color": {"primaryColor": "#6139F6", "isDarkModeEnabled": false, "darkPrimaryColor": "#8768F8"},
  "branding": {"logoUrl": "https://logto.io/logo.svg", "darkLogoUrl": "https://logto.io/logo-dark.svg"},
  "hideLogtoBranding": false,
  "languageInfo": {"autoDetect": true, "fallbackLanguage": "en"},
  "termsOfUseUrl": null,
  "privacyPolicyUrl": null,
  "agreeToTermsPolicy": "Automatic",
  "signIn": {"methods": [
    {"identifier": "username", "password": true, "verificationCode": false, "isPasswordPrimary": false},
    {"identifier": "email", "password": true, "verificationCode": false, "isPasswordPrimary": false},
    {"identifier": "phone", "password": true, "verificationCode": false, "isPasswordPrimary": false}
  ]},
  "signUp": {"identifiers": [], "password": false, "verify": false},
  "socialSignIn": {"skipRequiredIdentifiers": false},
  "socialSignInConnectorTargets": [],
  "signInMode": "SignInAndRegister",
  "customCss": null,
  "customContent": {},
  "customUiAssets": null,
  "customUiCsp": {},
  "passwordPolicy": {
    "length": {"min": 8, "max": 256},
    "characterTypes": {"min": 1},
    "rejects": {"pwned": true, "repetitionAndSequence": true, "userInfo": true, "words": []}
  },
  "mfa": {"factors": [], "policy": "PromptAtSignInAndSignUp"},
  "adaptiveMfa": {"enabled": false},
  "singleSignOnEnabled": true,
  "supportEmail": null,
  "supportWebsiteUrl": null,
  "unknownSessionRedirectUrl": null,
  "captchaPolicy": {"enabled": false},
  "sentinelPolicy": {"maxAttempts": 5, "lockoutDuration": 10},
  "emailBlocklistPolicy": {"customBlocklist": []},
  "verificationCodePolicy": {},
  "forgotPasswordMethods": [],
  "passkeySignIn": {},
  "signUpProfileFields": null,
  "passwordExpiration": {"enabled": false},
  "usernamePolicy": {
    "caseSensitive": true,
    "minLength": 1,
    "maxLength": 128,
    "allowedChars": {"lowercase": true, "uppercase": true, "numbers": true, "underscore": true}
  }
}`

// accountPageRedirects is the OIDC client metadata of the account page's application: each page
// URL's callback, and the page itself after sign-out. It has back-channel logout with the session
// id, so its tokens carry sid and the Account API can mark the page's own session "current" (the
// dev core never delivers back-channel logouts).
func accountPageRedirects(pageURLs []string) json.RawMessage {
	var meta struct {
		RedirectURIs                     []string `json:"redirectUris"`
		PostLogoutRedirectURIs           []string `json:"postLogoutRedirectUris"`
		BackchannelLogoutURI             string   `json:"backchannelLogoutUri"`
		BackchannelLogoutSessionRequired bool     `json:"backchannelLogoutSessionRequired"`
	}
	for _, u := range pageURLs {
		meta.RedirectURIs = append(meta.RedirectURIs, u+"/callback")
		meta.PostLogoutRedirectURIs = append(meta.PostLogoutRedirectURIs, u)
	}
	meta.BackchannelLogoutURI, meta.BackchannelLogoutSessionRequired = "http://127.0.0.1/backchannel-logout", true
	raw, err := json.Marshal(meta)
	if err != nil {
		panic(err)
	}
	return raw
}
