package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// apiClient makes the Authy API calls the scenarios need, with the application's key.
type apiClient struct {
	base string
	key  string
}

// call sends form (a query string for GET, a form body otherwise) and decodes a want-status JSON
// answer into out (nil to discard it).
func (a *apiClient) call(ctx context.Context, c *http.Client, method, path, form string, want int, out any) error {
	url := a.base + path
	var body *strings.Reader
	if method == http.MethodGet && form != "" {
		url += "?" + form
	}
	if method != http.MethodGet {
		body = strings.NewReader(form)
	}
	var req *http.Request
	var err error
	if body != nil {
		req, err = http.NewRequestWithContext(ctx, method, url, body)
	} else {
		req, err = http.NewRequestWithContext(ctx, method, url, nil)
	}
	if err != nil {
		return err
	}
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("X-Authy-API-Key", a.key)
	raw, err := do(c, req, want)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: %v: %.200s", method, path, err, raw)
	}
	return nil
}

// callJSON sends a JSON body, with a device's Bearer token when token is set.
func (a *apiClient) callJSON(ctx context.Context, c *http.Client, method, path, token string, body []byte, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	raw, err := do(c, req, want)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: %v: %.200s", method, path, err, raw)
	}
	return nil
}
