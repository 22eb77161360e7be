package verifyapi

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Twilio's paging, for every list: the request's PageSize (1 to 1000, default 50), Page (the
// page's number from 0, echoed) and PageToken (where the page starts: the token a previous
// page's next_page_url carries); the answer's list under its key and a meta object with the
// URLs of the first, previous and next pages. Without a token a page starts at Page × PageSize.
// The helper libraries follow next_page_url as given.

// Paging limits.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// Page is a list request's paging.
type Page struct {
	Size   int
	Number int
	After  int64 // the row id the page starts after (from PageToken); 0: none
}

// Offset is where a page without a token starts.
func (pg Page) Offset() int {
	if pg.After > 0 {
		return 0
	}
	return pg.Number * pg.Size
}

// readPage reads PageSize, Page and PageToken.
func readPage(p Params) (Page, error) {
	pg := Page{Size: DefaultPageSize}
	if err := p.Int("PageSize", &pg.Size); err != nil {
		return Page{}, err
	}
	if pg.Size < 1 || pg.Size > MaxPageSize {
		return Page{}, InvalidParam("PageSize", "must be 1 to 1000")
	}
	if err := p.Int("Page", &pg.Number); err != nil {
		return Page{}, err
	}
	if pg.Number < 0 || pg.Number > 1<<20 {
		return Page{}, InvalidParam("Page", "must be 0 or more")
	}
	if token := p.String("PageToken"); token != "" {
		digits, ok := strings.CutPrefix(token, "PA")
		n, err := strconv.ParseInt(digits, 10, 64)
		if !ok || err != nil || n <= 0 {
			return Page{}, InvalidParam("PageToken", "is not a page token of this list")
		}
		pg.After = n
	}
	return pg, nil
}

// Meta is the meta object of a list.
type Meta struct {
	Page            int     `json:"page"`
	PageSize        int     `json:"page_size"`
	FirstPageURL    string  `json:"first_page_url"`
	PreviousPageURL *string `json:"previous_page_url"`
	URL             string  `json:"url"`
	NextPageURL     *string `json:"next_page_url"`
	Key             string  `json:"key"`
}

// meta describes page pg of the list at r's path, listed under key: lastID is the row id of
// its last item, more whether items follow it. The list's other query parameters (its filters)
// are kept in every URL.
func (a *API) meta(r *http.Request, key string, pg Page, lastID int64, more bool) Meta {
	at := func(number int, token int64) string {
		q := url.Values{}
		for k, vs := range r.URL.Query() {
			if k != "PageSize" && k != "Page" && k != "PageToken" {
				q[k] = vs
			}
		}
		q.Set("PageSize", strconv.Itoa(pg.Size))
		q.Set("Page", strconv.Itoa(number))
		if token > 0 {
			q.Set("PageToken", "PA"+strconv.FormatInt(token, 10))
		}
		return a.baseURL(r) + r.URL.Path + "?" + q.Encode()
	}
	m := Meta{Page: pg.Number, PageSize: pg.Size, FirstPageURL: at(0, 0), URL: at(pg.Number, pg.After), Key: key}
	if pg.Number > 0 {
		prev := at(pg.Number-1, 0)
		m.PreviousPageURL = &prev
	}
	if more {
		next := at(pg.Number+1, lastID)
		m.NextPageURL = &next
	}
	return m
}
