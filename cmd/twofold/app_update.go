package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/twofold"
)

func appUpdateCmd(env Env) *cobra.Command {
	var asJSON bool
	var u apps.Update
	var name, callbackURL, callbackMethod, contactEmail, logoURL string
	var tokenLength, totpDigits, totpPeriod, totpWindow int
	var sandbox, sms, calls, bypass, matching, cbExpired, cbEnable bool
	var devicePeriod int
	var allowed string
	var customMessages, customCodes, migrationTools bool
	var limits []string
	var passkeyRPID, passkeyOrigins, passkeyUV string
	var passkeyUsernameless bool
	providers := map[twofold.Channel]*string{twofold.SMS: new(string), twofold.Call: new(string), twofold.Email: new(string)}
	cmd := &cobra.Command{
		Use:   "update ID [flags]",
		Short: "Change an application's settings",
		Long:  "Change an application's settings. Only the flags given change.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := appID(args[0])
			if err != nil {
				return err
			}
			changed := cmd.Flags().Changed
			if changed("name") {
				u.Name = &name
			}
			if changed("sandbox") {
				u.Sandbox = &sandbox
			}
			if changed("token-length") {
				u.TokenLength = &tokenLength
			}
			if changed("totp-digits") {
				u.TOTPDigits = &totpDigits
			}
			if changed("totp-period") {
				u.TOTPPeriod = &totpPeriod
			}
			if changed("totp-window") {
				u.TOTPSkew = &totpWindow
			}
			if changed("sms") {
				u.SMSEnabled = &sms
			}
			if changed("calls") {
				u.CallEnabled = &calls
			}
			if changed("unconfirmed-bypass") {
				u.UnconfirmedBypass = &bypass
			}
			if changed("callback-url") {
				u.CallbackURL = &callbackURL
			}
			if changed("callback-method") {
				u.CallbackMethod = &callbackMethod
			}
			if changed("contact-email") {
				u.ContactEmail = &contactEmail
			}
			if changed("number-matching") {
				u.NumberMatching = &matching
			}
			if changed("callback-expired") {
				u.CallbackExpired = &cbExpired
			}
			if changed("device-totp-period") {
				u.DeviceTOTPPeriod = &devicePeriod
			}
			if changed("allowed-countries") {
				list := []string{}
				for _, c := range strings.Split(allowed, ",") {
					if c = strings.ToUpper(strings.TrimSpace(c)); c != "" {
						list = append(list, c)
					}
				}
				u.AllowedCountries = &list
			}
			if changed("custom-messages") {
				u.CustomMessages = &customMessages
			}
			if changed("custom-codes") {
				u.CustomCodes = &customCodes
			}
			if changed("migration-tools") {
				u.MigrationTools = &migrationTools
			}
			if changed("logo-url") {
				u.LogoURL = &logoURL
			}
			if changed("passkey-rp-id") {
				u.PasskeyRPID = &passkeyRPID
			}
			if changed("passkey-origins") {
				list := strings.FieldsFunc(passkeyOrigins, func(r rune) bool { return r == ',' || r == ' ' })
				u.PasskeyOrigins = &list
			}
			if changed("passkey-user-verification") {
				u.PasskeyUV = &passkeyUV
			}
			if changed("passkey-usernameless") {
				u.PasskeyUsernameless = &passkeyUsernameless
			}
			for ch, name := range providers {
				if changed(string(ch) + "-provider") {
					if u.Providers == nil {
						u.Providers = map[twofold.Channel]string{}
					}
					u.Providers[ch] = *name
				}
			}
			for _, l := range limits {
				kind, value, ok := strings.Cut(l, "=")
				if !ok {
					return fmt.Errorf("--limit %q: want KIND=N/DURATION, KIND=off or KIND=default", l)
				}
				if u.Limits == nil {
					u.Limits = map[twofold.LimitKind]*twofold.Limit{}
				}
				u.Limits[twofold.LimitKind(strings.TrimSpace(kind))] = nil
				if v := strings.TrimSpace(value); v != "default" {
					parsed, err := twofold.ParseLimit(v)
					if err != nil {
						return fmt.Errorf("--limit %s: %w", kind, err)
					}
					u.Limits[twofold.LimitKind(strings.TrimSpace(kind))] = &parsed
				}
			}
			u.EnableCallback = cbEnable
			return withApps(cmd, env, func(in *instance) error {
				a, err := in.apps.Update(cmd.Context(), id, u)
				if err != nil {
					return cliError(err, id)
				}
				return showApp(env, a, "", asJSON)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "application name")
	f.BoolVar(&sandbox, "sandbox", false, "sandbox mode (deliver nothing; token 0000000 always verifies)")
	f.IntVar(&tokenLength, "token-length", 7, "digits of SMS, call and email codes, 6 to 10")
	f.IntVar(&totpDigits, "totp-digits", 6, "digits of authenticator codes for new enrolments, 6 to 8")
	f.IntVar(&totpPeriod, "totp-period", 30, "seconds per authenticator code for new enrolments, 10 to 120")
	f.IntVar(&totpWindow, "totp-window", 1, "authenticator steps accepted either side of now, 0 to 3")
	f.BoolVar(&sms, "sms", true, "allow SMS codes (--sms=false to disable)")
	f.BoolVar(&calls, "calls", true, "allow voice call codes (--calls=false to disable)")
	f.BoolVar(&bypass, "unconfirmed-bypass", false, "old Authy semantics: without force=true, users who never verified pass any token (unsafe)")
	f.StringVar(&callbackURL, "callback-url", "", "URL for OneTouch callbacks (empty to remove)")
	f.StringVar(&callbackMethod, "callback-method", "POST", "callback method: POST (JSON body) or GET")
	f.StringVar(&contactEmail, "contact-email", "", "owner's email, told when callbacks are disabled")
	f.BoolVar(&cbExpired, "callback-expired", false, "also call back when an approval request expires (Authy only called back answers)")
	f.BoolVar(&cbEnable, "callback-enabled", false, "re-enable callbacks disabled after failed deliveries")
	f.BoolVar(&matching, "number-matching", false, "approval requests ask the device for a 2-digit number shown on the login page")
	f.StringVar(&allowed, "allowed-countries", "", "send SMS and calls only to these countries, e.g. US,CA,PT (empty: all)")
	f.BoolVar(&customMessages, "custom-messages", true, "phone verification may send the caller's custom_message (--custom-messages=false refuses with 60091)")
	f.StringArrayVar(&limits, "limit", nil, "the application's own limit, KIND=N/DURATION, KIND=off or KIND=default (the server's); "+
		"kinds: failures, sends, number_sends, country_sends, app_sends; repeatable")
	f.BoolVar(&customCodes, "custom-codes", false, "phone verification may send the caller's own custom_code")
	f.StringVar(&logoURL, "logo-url", "", "the application's logo (an https URL) shown with its name on the hosted second-factor step; empty to remove")
	f.BoolVar(&migrationTools, "migration-tools", false, "answer Authy's migration exports, users/{id}/phone_number and users/{id}/secret/export "+
		"(every user's phone number and TOTP app seed to whoever holds the API key: on while moving users elsewhere, then off)")
	f.StringVar(providers[twofold.SMS], "sms-provider", "", "deliver this application's SMS with twilio, gateway or outbox (empty: the server's default)")
	f.StringVar(providers[twofold.Call], "call-provider", "", "deliver this application's calls with twilio or outbox (empty: the server's default)")
	f.StringVar(providers[twofold.Email], "email-provider", "", "deliver this application's email with smtp or outbox (empty: the server's default)")
	f.StringVar(&passkeyRPID, "passkey-rp-id", "", "passkeys' relying party id, the domain of the application's sign-in pages, e.g. example.com (empty: passkeys off)")
	f.StringVar(&passkeyOrigins, "passkey-origins", "", "origins the application's pages run at, comma-separated, e.g. https://login.example.com (empty: https://RP-ID)")
	f.StringVar(&passkeyUV, "passkey-user-verification", "preferred", "passkey user verification (PIN, biometrics): required, preferred or discouraged")
	f.BoolVar(&passkeyUsernameless, "passkey-usernameless", false, "allow usernameless sign-in with a discoverable passkey (always with user verification)")
	f.IntVar(&devicePeriod, "device-totp-period", 10, "seconds per code of devices registered from now on, 10 to 120")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	argument(f, argOutput, "json")
	argument(f, argApp)
	return cmd
}
