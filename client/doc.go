// Package client is for customers' Go applications that use Twofold, or the
// legacy Authy service, for two-factor authentication.
//
// It currently provides the check of the OneTouch (push authentication)
// callback signature: when a user approves or denies a push request, Twofold
// (like Authy before it) calls the application's configured callback URL,
// with GET or POST, and signs the call with the application's API key in the
// X-Authy-Signature and X-Authy-Signature-Nonce headers. [VerifyCallback]
// checks such a request in an http.Handler; [Signature] and [Canonical]
// expose the algorithm itself (HMAC-SHA256 over the nonce, the method, the
// callback URL without its query string, and the Rails Hash#to_query form of
// the parameters), for tests and for other transports.
//
// Signatures made by the real Authy service verify too, so an application can
// keep the same code while it moves from Authy to Twofold.
//
// A client for the Authy-compatible REST API will join this package later.
package client
