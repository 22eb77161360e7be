// Package client is for customers' Go applications that use Twofold, or the
// legacy Authy service, for two-factor authentication.
//
// [Client] calls the Authy-compatible REST API with an application's API key:
// register users, send codes by SMS or voice and verify them (or a code from
// an authenticator app), ask for OneTouch approvals, read their state and, as
// Twofold adds, close one the user no longer needs ([Client.CloseApprovalRequest]),
// and register devices: with a link that opens Twofold's web authenticator
// ([Client.CreateRegistrationLink]), or with the tutorials' QR code
// ([RegistrationJWT], [RegistrationQR], [Client.RegistrationStatus]). API errors
// are *[Error] values carrying Authy's error code; [IsCode] tests for one.
//
// The package also checks the OneTouch (push authentication) callback
// signature: when a user approves or denies a push request, Twofold
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
package client
