package apierror

import (
	"net/http"
	"strings"
)

// messages maps every code the module emits to Logto's English message (reference §9). The
// gateway's own codes (identity_core.*, request.*) follow the same shape.
var messages = map[string]string{
	"account_center.not_enabled":                     "Account center is not enabled.",
	"account_center.field_not_editable":              "Field is not editable.",
	"account_center.field_not_enabled":               "Field is not enabled.",
	"auth.authorization_header_missing":              "Authorization header is missing.",
	"auth.authorization_token_type_not_supported":    "Authorization type is not supported.",
	"auth.unauthorized":                              "Unauthorized. Please check credentials and its scope.",
	"auth.forbidden":                                 "Forbidden. Please check your user roles and permissions.",
	"auth.third_party_application_forbidden":         "Third-party applications cannot modify account data through this API.",
	"verification_record.not_found":                  "Verification record not found.",
	"verification_record.permission_denied":          "Permission denied, please re-authenticate.",
	"session.invalid_credentials":                    "Incorrect account or password. Please check your input.",
	"session.verification_blocked_too_many_attempts": "Too many attempts in a short time. Please try again later.",
	"user.username_already_in_use":                   "This username is already in use.",
	"user.username_required":                         "Username is a required identifier, you can not set it to null.",
	"user.username_starts_with_number":               "Username cannot start with a number.",
	"user.username_invalid_charset_hard":             "Username can only contain letters, numbers, and underscores.",
	"user.username_too_short":                        "Username is too short.",
	"user.username_too_long":                         "Username is too long.",
	"user.username_uppercase_not_allowed":            "Username cannot contain uppercase letters.",
	"user.username_lowercase_not_allowed":            "Username cannot contain lowercase letters.",
	"user.username_numbers_not_allowed":              "Username cannot contain numbers.",
	"user.username_underscore_not_allowed":           "Username cannot contain underscores.",
	"user.email_already_in_use":                      "This email is associated with an existing account.",
	"user.phone_already_in_use":                      "This phone number is associated with an existing account.",
	"user.invalid_phone":                             "Invalid phone number.",
	"user.identity_not_exist":                        "The social account has not been registered yet.",
	"user.identity_already_in_use":                   "The social account has been associated with an existing account.",
	"user.same_password":                             "New password cannot be the same as your old password.",
	"user.suspended":                                 "This account is suspended.",
	"user.last_sign_in_method_required":              "You need to keep at least one identifier in your account.",
	"password.rejected":                              "Password rejected. Please check if your password meets the requirements.",
	"guard.invalid_input":                            "The request body is invalid.",
	"entity.not_found":                               "The resource does not exist.",
	"entity.value_too_long":                          "The length of value is too long and exceeds the limit.",
	"entity.invalid_input":                           "Invalid input. Value list must not be empty.",
	"request.not_found":                              "The requested route does not exist.",
	"request.method_not_allowed":                     "The request method is not allowed on this route.",
	"request.payload_too_large":                      "The request body is too large.",
	"request.token_in_query":                         "Access tokens are accepted only in the Authorization header.",
	"request.rate_limited":                           "Too many requests. Please try again later.",
	"request.timeout":                                "The request body did not arrive in time.",
	"identity_core.unavailable":                      "The identity service is unavailable. Please try again later.",
	"identity_core.bad_response":                     "The identity service gave an unexpected answer.",
	"unknown":                                        "Internal server error.",

	"verification_code.not_found":                             "Verification code not found. Please send verification code first.",
	"verification_code.email_mismatch":                        "Email mismatch. Please request a new verification code.",
	"verification_code.phone_mismatch":                        "Phone mismatch. Please request a new verification code.",
	"verification_code.code_mismatch":                         "Invalid verification code.",
	"verification_code.expired":                               "Verification code has expired. Please request a new verification code.",
	"verification_code.exceed_max_try":                        "Verification code retries limitation exceeded. Please request a new verification code.",
	"request.message_rate_limited":                            "Too many messages sent to this recipient. Please try again later.",
	"session.invalid_connector_id":                            "Unable to find available connector with id {{connectorId}}.",
	"session.insufficient_info":                               "Insufficient sign-in info.",
	"session.email_blocklist.email_not_allowed":               "The email address \"{{email}}\" is restricted. Please choose a different one.",
	"session.email_blocklist.email_subaddressing_not_allowed": "Email subaddressing is not allowed.",
	"session.email_blocklist.invalid_email":                   "Invalid email address.",
	"connector.not_found":                                     "Cannot find any available connector for type: {{type}}.",
	"connector.unexpected_type":                               "The connector's type is unexpected.",
	"connector.invalid_response":                              "The connector's response is invalid.",
	"user.identity_not_exists_in_current_user":                "The specified identity does not exist in the current user account. Please link the identity before proceeding.",
	"verification_record.store_unavailable":                   "The verification service is unavailable. Please try again later.",

	"session.mfa.mfa_factor_not_enabled":       "MFA factor is not enabled.",
	"session.mfa.invalid_totp_code":            "Invalid TOTP code.",
	"session.mfa.backup_code_can_not_be_alone": "Backup code can not be the only MFA.",
	"user.totp_already_in_use":                 "TOTP is already in use.",
	"user.backup_code_already_in_use":          "Backup code is already in use.",
	"user.totp_secret_invalid":                 "Invalid TOTP secret supplied.",
	"user.wrong_backup_code_format":            "Backup code format is invalid.",
	"request.not_implemented":                  "This route of Logto's Account API cannot be served through the Management API.",

	"oidc.session_not_found":                       "Session not found.",
	"oidc.invalid_session_account_id":              "Session accountId mismatch.",
	"oidc.invalid_grant":                           "Grant request is invalid.",
	"oidc.failed_to_cleanup_session_authorization": "Failed to clean up session authorization.",
	"guard.file_size_exceeded":                     "File size exceeded.",
	"guard.mime_type_not_allowed":                  "MIME type is not allowed.",
	"storage.not_configured":                       "Storage provider is not configured.",
	"storage.upload_error":                         "Failed to upload file to the storage provider.",
}

// Message returns the English message for code, or the code itself when it is not catalogued.
func Message(code string) string {
	if m, ok := messages[code]; ok {
		return m
	}
	return code
}

// Known reports whether code is in the catalogue, i.e. safe to pass on from the identity core.
func Known(code string) bool {
	_, ok := messages[code]
	return ok
}

// The errors every route can answer with, ready-made.
var (
	HeaderMissing        = New(http.StatusUnauthorized, "auth.authorization_header_missing")
	TokenTypeUnsupported = New(http.StatusUnauthorized, "auth.authorization_token_type_not_supported").
				WithData(map[string][]string{"supportedTypes": {"Bearer"}})
	Unauthorized           = New(http.StatusUnauthorized, "auth.unauthorized")
	ScopeMissing           = New(http.StatusBadRequest, "auth.unauthorized") // Logto's string-form assert: 400
	Forbidden              = New(http.StatusForbidden, "auth.forbidden")
	ThirdPartyForbidden    = New(http.StatusForbidden, "auth.third_party_application_forbidden")
	AccountCenterDisabled  = New(http.StatusBadRequest, "account_center.not_enabled")
	FieldNotEditable       = New(http.StatusBadRequest, "account_center.field_not_editable")
	FieldNotEnabled        = New(http.StatusBadRequest, "account_center.field_not_enabled")
	PermissionDenied       = New(http.StatusUnauthorized, "verification_record.permission_denied")
	RecordNotFound         = New(http.StatusBadRequest, "verification_record.not_found")
	InvalidCredentials     = New(http.StatusUnprocessableEntity, "session.invalid_credentials")
	LastIdentifierRequired = New(http.StatusBadRequest, "user.last_sign_in_method_required")
	EmptyUpdate            = New(http.StatusUnprocessableEntity, "entity.invalid_input")
	RouteNotFound          = New(http.StatusNotFound, "request.not_found")
	MethodNotAllowed       = New(http.StatusMethodNotAllowed, "request.method_not_allowed")
	PayloadTooLarge        = New(http.StatusRequestEntityTooLarge, "request.payload_too_large")
	TokenInQuery           = New(http.StatusBadRequest, "request.token_in_query")
	RateLimited            = New(http.StatusTooManyRequests, "request.rate_limited")
	BodyTimeout            = New(http.StatusRequestTimeout, "request.timeout")
	CoreUnavailable        = New(http.StatusServiceUnavailable, "identity_core.unavailable")
	CoreBadResponse        = New(http.StatusBadGateway, "identity_core.bad_response")
	StoreUnavailable       = New(http.StatusServiceUnavailable, "verification_record.store_unavailable")
	UserSuspended          = New(http.StatusUnauthorized, "user.suspended")
	UsernameAlreadyInUse   = New(http.StatusUnprocessableEntity, "user.username_already_in_use")

	CodeNotFound          = New(http.StatusBadRequest, "verification_code.not_found")
	CodeExceedMaxTry      = New(http.StatusBadRequest, "verification_code.exceed_max_try")
	MessageRateLimited    = New(http.StatusTooManyRequests, "request.message_rate_limited")
	TooManyAttempts       = New(http.StatusTooManyRequests, "session.verification_blocked_too_many_attempts")
	InsufficientInfo      = New(http.StatusBadRequest, "session.insufficient_info")
	ConnectorUnexpected   = New(http.StatusBadRequest, "connector.unexpected_type")
	SamePassword          = New(http.StatusUnprocessableEntity, "user.same_password")
	InvalidPhone          = New(http.StatusUnprocessableEntity, "user.invalid_phone")
	IdentityNotExist      = New(http.StatusNotFound, "user.identity_not_exist")
	IdentityAlreadyInUse  = New(http.StatusBadRequest, "user.identity_already_in_use") // the caller's own target: Logto's string-form assert
	ScopeMissingExplicit  = New(http.StatusUnauthorized, "auth.unauthorized")          // Logto NOW's explicit 401 on the identities routes
	SubaddressingRejected = New(http.StatusUnprocessableEntity, "session.email_blocklist.email_subaddressing_not_allowed")
	InvalidEmail          = New(http.StatusBadRequest, "session.email_blocklist.invalid_email")

	MfaFactorNotEnabled     = New(http.StatusBadRequest, "session.mfa.mfa_factor_not_enabled")
	InvalidTotpCode         = New(http.StatusBadRequest, "session.mfa.invalid_totp_code")
	BackupCodeCannotBeAlone = New(http.StatusUnprocessableEntity, "session.mfa.backup_code_can_not_be_alone")
	TotpAlreadyInUse        = New(http.StatusUnprocessableEntity, "user.totp_already_in_use")
	BackupCodeAlreadyInUse  = New(http.StatusUnprocessableEntity, "user.backup_code_already_in_use")
	TotpSecretInvalid       = New(http.StatusBadRequest, "user.totp_secret_invalid") // the Account API's 400; the Management API says 422
	WrongBackupCodeFormat   = New(http.StatusUnprocessableEntity, "user.wrong_backup_code_format")

	// Logto's sessions route builds these with the status in data, not in the metadata, so they
	// answer 400 with data {"status":404} (reference §0.2) where the Management API says 404.
	SessionNotFound        = New(http.StatusBadRequest, "oidc.session_not_found").WithData(map[string]int{"status": 404})
	SessionAccountMismatch = New(http.StatusBadRequest, "oidc.invalid_session_account_id").WithData(map[string]int{"status": 404})
	GrantNotFound          = New(http.StatusNotFound, "oidc.invalid_grant")
	FileSizeExceeded       = New(http.StatusBadRequest, "guard.file_size_exceeded")
	MimeTypeNotAllowed     = New(http.StatusBadRequest, "guard.mime_type_not_allowed")
	StorageNotConfigured   = New(http.StatusBadRequest, "storage.not_configured")
	// NotImplemented is the one answer of every Logto route the Management API cannot express
	// (WebAuthn registration and naming, reading backup codes, provider tokens, trusted devices).
	NotImplemented = New(http.StatusNotImplemented, "request.not_implemented")
)

// Interpolated returns the error for code with {{name}} placeholders of its message filled in,
// as Logto's i18n does.
func Interpolated(status int, code string, values map[string]string) *Error {
	e := New(status, code)
	for k, v := range values {
		e.Message = strings.ReplaceAll(e.Message, "{{"+k+"}}", v)
	}
	return e
}
