package otp_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/callproof/callproof/sessions/otp"
)

// A receiver of the OTP delivery webhook checks the signature over the raw body before it
// trusts anything in it, then hands the code to its own SMS or email gateway.
func ExampleVerifyWebhookSignature() {
	secret := []byte("whsec_0123456789abcdef") // the same secret as otp_webhook_secret
	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			http.Error(w, "read error", http.StatusBadRequest)
			return
		}
		if err := otp.VerifyWebhookSignature(secret, r.Header.Get(otp.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		// Deliver the code (never log it), remembering r.Header.Get(otp.DeliveryHeader) to
		// drop retries of a message already delivered.
		w.WriteHeader(http.StatusNoContent)
	})

	body := []byte(`{"to":"+14155550100","channel":"sms","code":"123456","expires_at":"2026-01-02T03:09:05Z","call":"CA1","locale":"en-US"}`)
	for _, sig := range []string{otp.WebhookSignature(secret, time.Now(), body), "t=1,v1=00"} {
		req := httptest.NewRequest(http.MethodPost, "/otp", strings.NewReader(string(body)))
		req.Header.Set(otp.SignatureHeader, sig)
		rec := httptest.NewRecorder()
		receiver.ServeHTTP(rec, req)
		fmt.Println(rec.Code)
	}
	// Output:
	// 204
	// 401
}
