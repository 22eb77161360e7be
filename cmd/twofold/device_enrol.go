package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // QR codes as screenshots or photos
	_ "image/jpeg"
	_ "image/png"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/spf13/cobra"

	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/vault"
)

// link is what a user can paste or scan to add an account.
type enrolLink struct {
	kind   string // "jwt" (the Authy tutorials' QR code), "token" (a registration token) or "otpauth"
	server string // the server a device registers with
	token  string // the JWT or registration token
	key    otp.Key
}

const linkHelp = "expected authy://account?token=JWT, https://HOST/authenticator/#register=TOKEN or otpauth://totp/..."

// parseLink understands the three kinds of links; server is the --server value, used by links
// that carry none (authy:// QR codes and bare tokens).
func parseLink(raw, server string) (enrolLink, error) {
	raw = strings.TrimSpace(raw)
	scheme, _, _ := strings.Cut(raw, ":")
	needServer := func(l enrolLink) (enrolLink, error) {
		if server == "" {
			return enrolLink{}, errors.New("this link does not say which server issued it: pass --server URL (or set TWOFOLD_SERVER)")
		}
		s, err := checkServer(server)
		if err != nil {
			return enrolLink{}, err
		}
		l.server = s
		return l, nil
	}
	switch strings.ToLower(scheme) {
	case "otpauth":
		k, err := otp.ParseURI(raw)
		if err != nil {
			return enrolLink{}, fmt.Errorf("cannot add this otpauth link: %w", err)
		}
		return enrolLink{kind: "otpauth", key: k}, nil
	case "authy":
		u, err := url.Parse(raw)
		if err != nil {
			return enrolLink{}, fmt.Errorf("not a valid authy:// link: %w", err)
		}
		token := u.Query().Get("token")
		if token == "" {
			return enrolLink{}, errors.New("this authy:// link has no token")
		}
		return needServer(enrolLink{kind: "jwt", token: token})
	case "http", "https":
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return enrolLink{}, fmt.Errorf("not a registration link (%s)", linkHelp)
		}
		frag, _ := url.ParseQuery(u.Fragment)
		token := frag.Get("register")
		if token == "" {
			token = u.Query().Get("register")
		}
		if token == "" {
			return enrolLink{}, fmt.Errorf("this link has no #register= token (%s)", linkHelp)
		}
		path := strings.TrimSuffix(strings.TrimSuffix(u.EscapedPath(), "/"), "/authenticator")
		s, err := checkServer(u.Scheme + "://" + u.Host + path)
		if err != nil {
			return enrolLink{}, err
		}
		return enrolLink{kind: "token", server: s, token: token}, nil
	}
	switch {
	case strings.HasPrefix(raw, "tfr_"):
		return needServer(enrolLink{kind: "token", token: raw})
	case strings.HasPrefix(raw, "eyJ") && strings.Count(raw, ".") == 2:
		return needServer(enrolLink{kind: "jwt", token: raw})
	}
	return enrolLink{}, fmt.Errorf("not a link twofold understands: %s", linkHelp)
}

// decodeQR reads the text of the QR code in an image file (PNG, JPEG or GIF).
func decodeQR(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return "", fmt.Errorf("%s is not a PNG, JPEG or GIF image: %w", path, err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	// The finder-pattern search misses about one clean, generated code in forty (it depends on
	// the data); such an image is exactly a code in its quiet zone, which the pure-barcode
	// reader decodes. Photos and screenshots need the search, so it goes first.
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		pure, perr := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
		if perr != nil {
			return "", fmt.Errorf("no readable QR code in %s: %w", path, err)
		}
		res = pure
	}
	return res.GetText(), nil
}

func deviceEnrolCmd(o *deviceOpts) *cobra.Command {
	var server, qrFile, name string
	var asJSON bool
	host, _ := os.Hostname()
	cmd := &cobra.Command{
		Use:     "enrol LINK | --qr FILE",
		Aliases: []string{"enroll", "add"},
		Short:   "Register this authenticator as a device, or add a TOTP account",
		Long: `Add an account to the vault (creating the vault on first use) from a link or the QR code
that shows it:

  authy://account?token=JWT        the Authy tutorials' QR code: registers a device for the user
                                   (needs --server or TWOFOLD_SERVER)
  https://HOST/authenticator/#register=tfr_...
                                   a registration_url from sdk/registrations: registers a device
  otpauth://totp/ISSUER:ACCOUNT?secret=...
                                   a plain TOTP account (codes only, no approvals)

Registering makes a new ECDSA P-256 key pair; the private key never leaves the vault.`,
		Example: `  twofold device enrol --qr login-qr.png --server https://2fa.example.com
  twofold device enrol 'otpauth://totp/GitHub:ada?secret=JBSWY3DPEHPK3PXP&issuer=GitHub'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var text string
			switch {
			case len(args) == 1 && qrFile != "":
				return errors.New("give a LINK or --qr FILE, not both")
			case len(args) == 1:
				text = args[0]
			case qrFile != "":
				var err error
				if text, err = decodeQR(qrFile); err != nil {
					return err
				}
			default:
				return fmt.Errorf("give the LINK to enrol or --qr FILE (%s)", linkHelp)
			}
			l, err := parseLink(text, server)
			if err != nil {
				return err
			}
			if l.kind == "otpauth" {
				return o.addAccount(l.key, asJSON)
			}
			return o.addDevice(cmd, l, name, asJSON)
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "server URL for links that carry none, such as authy:// QR codes")
	cmd.Flags().StringVar(&qrFile, "qr", "", "read the link from the QR code in this image (PNG, JPEG or GIF)")
	cmd.Flags().StringVar(&name, "name", strings.TrimSpace("twofold CLI "+host), "device name the server shows")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	setting(cmd.Flags(), "server")
	argument(cmd.Flags(), argOutput, "json")
	argument(cmd.Flags(), argTarget)
	return cmd
}

func (o *deviceOpts) addAccount(k otp.Key, asJSON bool) error {
	var added vaultEntry
	err := o.update(true, func(v *vault.Vault) error {
		for _, e := range vaultEntries(v) {
			if a := e.account; a != nil && a.Issuer == k.Issuer && a.Account == k.Account && string(a.Secret) == string(k.Secret) {
				return fmt.Errorf("%s is already in the vault (account %d)", e.label(), e.index)
			}
		}
		v.Accounts = append(v.Accounts, vault.Account{Issuer: k.Issuer, Account: k.Account, Secret: k.Secret,
			Digits: k.Digits, Period: k.Period, Algorithm: string(k.Algorithm), AddedAt: time.Now().UTC()})
		all := vaultEntries(v)
		added = all[len(all)-1]
		return nil
	})
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(o.env.Stdout, vaultEntryJSON(added))
	}
	fmt.Fprintf(o.env.Stdout, "Added the TOTP account %s (%d digits every %ds) as account %d.\n",
		added.label(), added.account.Digits, added.account.Period, added.index)
	return nil
}

// addDevice registers a new key pair with the server and keeps the device in the vault. The
// vault is opened (and its passphrase checked) first; if it cannot be saved, the registration
// is undone on the server.
func (o *deviceOpts) addDevice(cmd *cobra.Command, l enrolLink, name string, asJSON bool) error {
	client := newHTTPClient()
	defer client.CloseIdleConnections()
	ctx := cmd.Context()
	var added vaultEntry
	var dev *vault.Device
	err := o.update(true, func(v *vault.Vault) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			return err
		}
		priv, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		body := map[string]string{"public_key": base64.StdEncoding.EncodeToString(pub), "name": name, "os_type": "cli"}
		if l.kind == "jwt" {
			body["jwt"] = l.token
		} else {
			body["registration_token"] = l.token
		}
		var reg deviceRegistration
		api := deviceAPI{client: client, server: l.server}
		if err := api.call(ctx, http.MethodPost, "/device/v1/registrations", body, &reg); err != nil {
			return fmt.Errorf("registering with %s: %w", l.server, err)
		}
		secret, err := otp.DecodeSecret(reg.TOTP.Secret)
		if err != nil || reg.AccessToken == "" || reg.TOTP.Digits < otp.MinDigits || reg.TOTP.Digits > otp.MaxDigits || reg.TOTP.Period <= 0 {
			return fmt.Errorf("registering with %s: the server's answer lacks the access token or a valid TOTP seed", l.server)
		}
		d := vault.Device{Server: l.server, AccessToken: reg.AccessToken, DeviceID: reg.Device.ID, AuthyID: reg.Device.AuthyID,
			AppID: reg.Device.AppID, AppName: reg.Device.AppName, Name: reg.Device.Name, PrivateKey: priv, TOTPSecret: secret,
			Digits: reg.TOTP.Digits, Period: reg.TOTP.Period, AddedAt: time.Now().UTC()}
		dev = &d
		v.Devices = append(v.Devices, d)
		added = vaultEntries(v)[len(v.Devices)-1]
		return nil
	})
	if err != nil {
		if dev != nil { // registered, but not kept: undo it, or the server holds a device nobody can use
			if derr := forDevice(client, *dev).call(ctx, http.MethodDelete, "/device/v1/device", nil, nil); derr != nil {
				return fmt.Errorf("%w (and the device %d registered with %s could not be removed again: %v)", err, dev.DeviceID, dev.Server, derr)
			}
		}
		return err
	}
	if asJSON {
		return printJSON(o.env.Stdout, vaultEntryJSON(added))
	}
	fmt.Fprintf(o.env.Stdout, "Registered this device with %s (authy id %d) at %s as account %d (device id %d).\n",
		dev.AppName, dev.AuthyID, dev.Server, added.index, dev.DeviceID)
	fmt.Fprintln(o.env.Stdout, "Codes: twofold device codes; approval requests: twofold device watch")
	return nil
}
