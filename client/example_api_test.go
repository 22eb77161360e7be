package client_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/twofold-auth/twofold/client"
)

// A login's second factor: a push approval when the user has a device, else a code by SMS.
func ExampleClient() {
	ctx := context.Background()
	c, err := client.New("https://2fa.example.com", os.Getenv("TWOFOLD_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	// At sign-up: register the user, keep the id with the account.
	authyID, err := c.RegisterUser(ctx, client.NewUser{Email: "ana@example.com", Phone: "201-555-0123", CountryCode: "1"})
	if err != nil {
		log.Fatal(err)
	}

	// At login, after the password:
	status, err := c.UserStatus(ctx, authyID)
	if err != nil {
		log.Fatal(err)
	}
	if len(status.Devices) > 0 {
		req, err := c.CreateApprovalRequest(ctx, authyID, client.ApprovalRequest{
			Message: "Log in to Shop", Details: map[string]string{"Email": "ana@example.com"}, SecondsToExpire: 120,
		})
		if err != nil {
			log.Fatal(err)
		}
		// Wait for the signed callback (VerifyCallback), or poll:
		for {
			a, err := c.ApprovalRequest(ctx, req.UUID)
			if err != nil {
				log.Fatal(err)
			}
			if a.Status != "pending" {
				fmt.Println("login", a.Status) // approved, denied or expired
				return
			}
			time.Sleep(2 * time.Second)
		}
	}
	if _, err := c.RequestSMS(ctx, authyID, client.SendOptions{}); err != nil {
		log.Fatal(err)
	}
	// … then, with the code the user typed:
	switch err := c.Verify(ctx, authyID, "1234567", client.VerifyOptions{}); {
	case err == nil:
		fmt.Println("logged in")
	case client.IsCode(err, client.CodeTokenInvalid), client.IsCode(err, client.CodeTokenReused):
		fmt.Println("wrong code, try again")
	case client.IsCode(err, client.CodeRateLimited):
		fmt.Println("too many tries, wait a while")
	default:
		log.Fatal(err)
	}
}

// The tutorials' registration QR code: show it on the profile page, then poll
// RegistrationStatus until the user has scanned it.
func ExampleRegistrationQR() {
	jwt, err := client.RegistrationJWT("FU10H0uCafgKnXvPfDm5iAisVuHDgXJA", client.RegistrationClaims{
		AppID: 1, AppName: "Shop", CustomUserID: "42", TTL: 5 * time.Minute,
	}, time.Unix(1_800_000_000, 0))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(client.RegistrationQR(jwt))
	// Output:
	// authy://account?token=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJTaG9wIiwiaWF0IjoxODAwMDAwMDAwLCJleHAiOjE4MDAwMDAzMDAsImNvbnRleHQiOnsiY3VzdG9tX3VzZXJfaWQiOiI0MiIsImF1dGh5X2FwcF9pZCI6MX19.glANQ2nWLNBUUxFbPks-jhFAhwYqcooGOvVN1ROKZYY
}

// Recovery codes (Twofold's addition): made when the user turns two-factor authentication on,
// shown to them once, and accepted by VerifyResult as a factor of their own.
func ExampleClient_GenerateRecoveryCodes() {
	ctx := context.Background()
	c, err := client.New("https://2fa.example.com", os.Getenv("TWOFOLD_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	const authyID = 1635
	set, err := c.GenerateRecoveryCodes(ctx, authyID, 0) // 10 codes; the old set stops working
	if err != nil {
		log.Fatal(err)
	}
	for _, code := range set.Codes {
		fmt.Println(code) // show once: "k7m2-9xqp-4tfh"; store nowhere
	}

	// At the second step, a user who lost their phone types one:
	v, err := c.VerifyResult(ctx, authyID, "K7M2 9XQP 4TFH", client.VerifyOptions{})
	switch {
	case err == nil && v.Factor == client.FactorRecoveryCode:
		fmt.Printf("logged in with a recovery code, %d left: ask the user to set up their phone again\n", v.RecoveryCodesRemaining)
	case client.IsCode(err, client.CodeTokenReused):
		fmt.Println("that recovery code was already used")
	case err != nil:
		fmt.Println("not one of the user's codes")
	}
}
