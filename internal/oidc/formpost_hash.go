package oidc

// onloadHash is the CSP hash of the form-post page's onload handler,
// "document.forms[0].submit()" (TestFormPostHash recomputes it).
const onloadHash = "ePniVEkSivX/c7XWBGafqh8tSpiRrKiqYeqbG7N1TOE="
