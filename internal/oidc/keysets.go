package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// KeySets fetches the JSON Web Key Sets of others (an identity provider's, for its
// id_token_hint; a client's, for its signed requests and client assertions) through an HTTP
// client whose dialer is the egress guard, so an operator's URL cannot make the server reach a
// private address unless it is allow-listed. A set is kept for a while; a key id it lacks makes
// it fetch again, at most once per refetch interval.
type KeySets struct {
	client  *http.Client
	now     func() time.Time
	keep    time.Duration // how long a fetched set is used
	refetch time.Duration // the least time between fetches of one URL

	mu   sync.Mutex
	sets map[string]*keySet
}

type keySet struct {
	set     jose.JSONWebKeySet
	fetched time.Time
}

// maxKeySet bounds a fetched key set.
const maxKeySet = 256 << 10

// NewKeySets returns key sets fetched with client (whose transport dials through the egress
// guard). now may be nil for time.Now.
func NewKeySets(client *http.Client, now func() time.Time) *KeySets {
	if now == nil {
		now = time.Now
	}
	return &KeySets{client: client, now: now, keep: 10 * time.Minute, refetch: 30 * time.Second, sets: map[string]*keySet{}}
}

// ErrNoKey is returned when no key of the set at a URL has the key id asked for.
var ErrNoKey = errors.New("no key with that id in the key set")

// Keys returns the keys with key id kid (all keys when kid is "") of the set at url.
func (k *KeySets) Keys(ctx context.Context, url, kid string) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	cached := k.sets[url]
	k.mu.Unlock()
	now := k.now()
	if cached != nil && now.Sub(cached.fetched) < k.keep {
		if keys := pick(cached.set, kid); len(keys) > 0 || now.Sub(cached.fetched) < k.refetch {
			if len(keys) == 0 {
				return nil, ErrNoKey
			}
			return keys, nil
		}
	}
	set, err := k.fetch(ctx, url)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.sets[url] = &keySet{set: set, fetched: now}
	k.mu.Unlock()
	keys := pick(set, kid)
	if len(keys) == 0 {
		return nil, ErrNoKey
	}
	return keys, nil
}

func pick(set jose.JSONWebKeySet, kid string) []jose.JSONWebKey {
	if kid == "" {
		return set.Keys
	}
	return set.Key(kid)
}

func (k *KeySets) fetch(ctx context.Context, url string) (jose.JSONWebKeySet, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("key set %s: %w", url, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("key set %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return jose.JSONWebKeySet{}, fmt.Errorf("key set %s: HTTP %d", url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeySet+1))
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("key set %s: %w", url, err)
	}
	if len(body) > maxKeySet {
		return jose.JSONWebKeySet{}, fmt.Errorf("key set %s: larger than %d bytes", url, maxKeySet)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("key set %s: %w", url, err)
	}
	// Only public keys verify; a set holding a private key is a mistake not to repeat.
	public := set.Keys[:0]
	for _, key := range set.Keys {
		if key.Valid() && key.IsPublic() && (key.Use == "" || key.Use == "sig") {
			public = append(public, key)
		}
	}
	set.Keys = public
	return set, nil
}
