// Package twofold holds the domain types shared by the services, the store and the wire
// adapters: applications, users, messages, and the one error type that carries an Authy error
// code. It imports nothing of the project, so everything else may depend on it.
package twofold

import (
	"errors"
	"fmt"
	"time"
)

// Code is an Authy error code. The numbers are part of the wire contract; the HTTP status for
// each is decided by the wire adapter.
type Code int

const (
	CodeInternal                   Code = 60000
	CodeInvalidAPIKey              Code = 60001
	CodeInvalidRequest             Code = 60002
	CodeRateLimited                Code = 60003
	CodeInvalidParameter           Code = 60004
	CodeInvalidEncoding            Code = 60005
	CodeCallDisabled               Code = 60006
	CodeSMSDisabled                Code = 60007
	CodeBannedCountry              Code = 60013
	CodeCallNotStarted             Code = 60014
	CodeSMSNotSent                 Code = 60015
	CodeUserDoesNotExist           Code = 60016
	CodeTokenReused                Code = 60019
	CodeTokenInvalid               Code = 60020
	CodePhoneVerificationIncorrect Code = 60022
	CodePhoneVerificationNotFound  Code = 60023
	CodeUserNotFound               Code = 60026
	CodeUserNotValid               Code = 60027
	CodeCannotCreateActivity       Code = 60029
	CodeInvalidPhone               Code = 60033
	CodeRegistrationInvalid        Code = 60034
	CodeRegistrationNotFound       Code = 60035
	CodeRegistrationExpired        Code = 60037
	CodeInvalidEmail               Code = 60038
	CodeRequestNotFound            Code = 60049
	CodeUnregisteredUser           Code = 60050
	CodeInvalidAccessKey           Code = 60072
	CodeNotPending                 Code = 60079
	CodeRequestInvalid             Code = 60080
	CodeInvalidSignature           Code = 60087
	CodeCustomMessageDisallowed    Code = 60091
	CodeDeviceNotFound             Code = 60092
	CodeJWTExpired                 Code = 60086
	CodeInvalidJWT                 Code = 60101
	CodePhoneNumberNotFound        Code = 60058
	CodeSMSToLandline              Code = 60082
	CodeAuthenticatorNotFound      Code = 60113
	CodeQRCodeFailed               Code = 60122
	CodeMigrationToolsDisabled     Code = 60154
	// Passkeys (Twofold's addition, issue 21).
	CodePasskeysNotConfigured   Code = 60170 // the application has no relying party id
	CodePasskeyCeremonyNotFound Code = 60171 // unknown, expired or already finished
	CodePasskeyInvalid          Code = 60172 // an assertion refused (401)
	CodePasskeyRegistration     Code = 60173 // a registration response refused
	CodePasskeyNotFound         Code = 60174
	CodePasskeyCloned           Code = 60175 // the signature counter went back (401)
	CodeUsernamelessDisabled    Code = 60176
	CodeNoPasskeys              Code = 60177 // the user has no passkey to sign in with
)

// Error is a failure the API reports to its caller: an Authy code, a human message and, for
// validation failures, per-field messages. Anything else reaching a handler is an internal error.
type Error struct {
	Code    Code
	Message string
	Fields  map[string]string // e.g. {"cellphone": "is invalid"}; duplicated at the top level on the wire
	Token   string            // for token failures, Authy also answered "token": "is invalid"

	RetryAfter time.Duration // for CodeRateLimited
}

func (e *Error) Error() string { return fmt.Sprintf("%d: %s", e.Code, e.Message) }

// Errorf builds an *Error.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the Authy code of err, or CodeInternal when err is not an *Error.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// The errors with fixed texts that client libraries match on (spec sections 2-3, 7).
func ErrUserNotFound() *Error     { return Errorf(CodeUserNotFound, "User not found.") }
func ErrUserDoesNotExist() *Error { return Errorf(CodeUserDoesNotExist, "User doesn't exist") }
func ErrTokenInvalid() *Error {
	return &Error{Code: CodeTokenInvalid, Message: "Token is invalid", Token: "is invalid"}
}
func ErrTokenReused() *Error {
	return &Error{Code: CodeTokenReused, Message: "Token is invalid. Token was used recently.", Token: "is invalid"}
}

// The migration exports' refusals when the application has not enabled them, in the words of
// Authy's documentation of each.
func ErrMigrationToolsDisabled() *Error {
	return Errorf(CodeMigrationToolsDisabled, "Migration tools disabled.")
}
func ErrPhoneExportDisabled() *Error {
	return Errorf(CodeMigrationToolsDisabled, "Phone number export disabled.")
}

// ErrInvalidParam reports a missing or malformed parameter in Authy's wording.
func ErrInvalidParam(name, why string) *Error {
	return Errorf(CodeInvalidParameter, "Invalid parameter: %s - %s", name, why)
}

// ErrLimit builds the 60003 error every limit answers with; retryAfter tells the client when the
// limit has room again.
func ErrLimit(what string, retryAfter time.Duration) *Error {
	return &Error{Code: CodeRateLimited, Message: "Too many requests: " + what + ". Try again later.", RetryAfter: retryAfter}
}
