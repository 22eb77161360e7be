// Package verifyapi is the Twilio Verify v2 API on the wire: a second adapter, beside
// internal/authyapi, over the same domain services and store. A Verify "service" is a
// configuration inside a Twofold application; its verifications go through the same fraud
// rules, send limits, delivery providers and outbox as the Authy API's codes. This package
// holds no business rules: it reads Twilio's parameters, authenticates, and writes Twilio's
// JSON and errors (docs/verify-v2.md says what is served).
//
// # How a request is served
//
//   - Handler sits in front of the server's mux for the paths under Prefix (/v2): what fails
//     before a route is found (headers too large, an unclean path, an unknown route: 20404,
//     another method: 20004, a panic: 20500) is answered in Twilio's error shape. Every other
//     path goes on to the Authy API's Handler.
//   - Routes registers each route through handle, which reads the parameters (params.go: the
//     query string and a form body, Twilio's names such as "Totp.Issuer"; repeated names are
//     lists), authenticates HTTP Basic (apps.Service.AuthenticateTwilio: the application's
//     account SID and auth token, or an API key's SID and secret; anything else is 20003 with
//     a 401), spends the application's request rate limit (Config.Allow: the Authy API's, so
//     one application has one budget), counts the call, names the application as the audit
//     trail's actor, and runs the handler with a *call (the caller and the parameters).
//   - A handler returns an error: an *Error (errors.go: Twilio's code, HTTP status, message)
//     or a domain error, which twilioError translates: twofold.ErrNotFound is 20404,
//     verify.ErrMaxChecks 60202, verify.ErrMaxSends 60203, a send limit 60212 or 20429,
//     apps.InvalidSettings and the domain's invalid parameters 60200, and so on. Anything else
//     is logged and answered 20500; bad input must never get there.
//
// # Adding a resource (Entities, Factors, Challenges, Webhooks, …)
//
//  1. Keep the rules in a domain package (internal/verify, internal/devices, …) with its store
//     methods and their conformance tests on both engines; the domain speaks of public ids (32
//     lower-case hex digits, twofold.NewPublicID), never of SIDs.
//  2. Give the resource its SID prefix in sids.go (YE entity, YF factor, YC challenge, YW
//     webhook); read path SIDs with publicID (a wrong prefix or shape is 20404) and write them
//     with sid.
//  3. Write a file per resource here: a JSON struct with Twilio's field names (dates in
//     timeFormat, url from baseURL, links), handlers that load the parent service with
//     a.service(r, c) (20404 when it is not the caller's), read parameters with Params
//     (Required, Bool, Int, Text, List, JSONObject; Refuse for what is not served and must
//     not be ignored), and answer with writeJSON (201 for a create, 204 with no body for a
//     delete).
//  4. Lists: readPage, then ask the store for Page.Size+1 rows after Page.After (or from
//     Page.Offset), and answer the rows under their key with a.meta(r, key, pg, lastRowID,
//     more): the official libraries page by following meta.next_page_url.
//  5. Events for a service's webhooks (webhooks.go) enter through apps.VerifyEvents.Emit,
//     called once the factor or challenge change is committed; internal/callback delivers them.
//  6. Register the routes in Routes, add each to the hostile-input suite (cmd/twofold
//     hostileRoutes, auth kind "basic"), and drive the resource with the official twilio
//     package in cmd/twofold/testdata/compat/verify.js.
package verifyapi
