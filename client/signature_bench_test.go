package client

import "testing"

// callbackParams is a OneTouch callback's body as the server sends it .
func callbackParams() map[string]any {
	return map[string]any{
		"authy_id": 1, "device_uuid": "", "callback_action": "approval_request_status",
		"uuid": "c5a7e4a0-1c1d-4a3b-9a53-9f1b2c3d4e5f", "status": "approved", "signature": "MEUCIQD...",
		"device": map[string]any{"id": 7, "os_type": "bench", "registration_date": 1700000000, "last_sync_date": 1700000100},
		"approval_request": map[string]any{
			"transaction": map[string]any{
				"details": map[string]any{"username": "ada", "ip": "127.0.0.1"}, "hidden_details": map[string]any{"session": "abc"},
				"device_details": map[string]any{}, "device_geolocation": "", "device_signing_time": 1700000100,
				"encrypted": false, "flagged": false, "message": "Login requested", "reason": "", "requester_details": nil,
				"status": "approved", "uuid": "c5a7e4a0-1c1d-4a3b-9a53-9f1b2c3d4e5f", "created_at_time": 1700000000, "customer_uuid": 1,
			},
			"expiration_timestamp": 1700086400,
			"logos":                []any{map[string]any{"res": "default", "url": "https://example.com/l.png"}},
		},
	}
}

// Signing runs once per callback delivery on the server. BenchmarkSignature in callback_test.go
// signs authy-java's vector; this signs the larger body Twofold's server sends.
func BenchmarkSignatureServerPayload(b *testing.B) {
	p := callbackParams()
	b.ReportAllocs()
	for b.Loop() {
		Signature("0123456789abcdefABCDEF0123456789", "1700000100", "POST", "https://shop.example/callback", p)
	}
}
