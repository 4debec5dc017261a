package carrier

import (
	"context"
	"fmt"

	"github.com/oklog/ulid/v2"
)

// smsData is the data of an SMS event on wuyou.sms.v1 (CONTRACT §7.4).
type smsData struct {
	Text string `json:"text"`
	Lang string `json:"lang"`
}

// SendSMS publishes one text for the carrier's SMS gateway on wuyou.sms.v1:
// a CloudEvent of type kind (wuyou.sms.otp) with the MSISDN as subject,
// keyed by seafarer id, and returns once the brokers have it. Each call is
// a new message (a new id): a text is sent as often as it is asked for.
func (p *Publisher) SendSMS(ctx context.Context, seafarerID, msisdn, lang, kind, text string) error {
	msg, err := p.message(p.topics.SMS, seafarerID, outEvent{
		ID: "sms_" + ulid.Make().String(), Type: kind, Time: p.now().UTC(), Subject: msisdn,
		Data: smsData{Text: text, Lang: lang},
	})
	if err != nil {
		return err
	}
	if err := p.w.WriteMessages(ctx, msg); err != nil {
		return fmt.Errorf("carrier: publish SMS: %w", err)
	}
	return nil
}
