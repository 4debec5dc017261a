package carrier

// Topics are the Kafka topic names, each with the deployment's prefix
// (WUYOU_TOPIC_PREFIX) prepended.
type Topics struct {
	Usage, DeadLetter, Late, Notifications, Ledger string
	// SMS carries texts for the carrier's SMS gateway (sign-in codes).
	SMS string
}

// NewTopics returns the contract's topic names under prefix.
func NewTopics(prefix string) Topics {
	return Topics{
		Usage:         prefix + "carrier.usage.v1",
		DeadLetter:    prefix + "carrier.usage.dlq.v1",
		Late:          prefix + "carrier.usage.late.v1",
		Notifications: prefix + "wuyou.notifications.v1",
		Ledger:        prefix + "wuyou.ledger.v1",
		SMS:           prefix + "wuyou.sms.v1",
	}
}

// All lists every topic, for creating them in the embedded broker and tests.
func (t Topics) All() []string {
	return []string{t.Usage, t.DeadLetter, t.Late, t.Notifications, t.Ledger, t.SMS}
}
