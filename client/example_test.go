package client_test

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/client"
)

func ExampleVerifyCallback() {
	const (
		apiKey = "FU10H0uCafgKnXvPfDm5iAisVuHDgXJA" // the application's API key
		// The callback URL as configured for OneTouch in Twofold or Authy.
		publicURL = "https://app.example.com/authy/callback"
	)

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := client.VerifyCallback(r, apiKey, publicURL, client.WithMaxAge(5*time.Minute, nil)); err != nil {
			log.Printf("rejected OneTouch callback: %v", err)
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		// VerifyCallback put the body back: decode it as usual.
		var cb struct {
			AuthyID        json.Number `json:"authy_id"`
			UUID           string      `json:"uuid"`
			Status         string      `json:"status"` // "approved" or "denied"
			CallbackAction string      `json:"callback_action"`
		}
		if err := json.NewDecoder(r.Body).Decode(&cb); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		fmt.Printf("approval request %s for user %s: %s\n", cb.UUID, cb.AuthyID, cb.Status)
	})

	// What Twofold sends when the user approves (here signed by hand).
	body := `{"authy_id":688611,"callback_action":"approval_request_status",` +
		`"uuid":"4a725520-bff5-0135-eb01-0e5d90336a8c","status":"approved",` +
		`"approval_request":{"transaction":{"message":"Log in?","details":{"Location":"earth"}}}}`
	var params map[string]any
	if err := json.Unmarshal([]byte(body), &params); err != nil {
		log.Fatal(err)
	}
	nonce := fmt.Sprint(time.Now().Unix())
	req := httptest.NewRequest("POST", "/authy/callback", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(client.NonceHeader, nonce)
	req.Header.Set(client.SignatureHeader, client.Signature(apiKey, nonce, "POST", publicURL, params))

	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	// Output:
	// approval request 4a725520-bff5-0135-eb01-0e5d90336a8c for user 688611: approved
	// 200
}
