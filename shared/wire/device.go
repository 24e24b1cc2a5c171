package wire

// ErrorBody is the body of every refusal of the management and device API. Codes
// are stable; messages are for people.
type ErrorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// DeviceReport is the body of POST /v1/device/report: an install outcome.
type DeviceReport struct {
	AppID    string `json:"app_id"`
	DeviceID string `json:"device_id"`
	Channel  string `json:"channel"`
	Version  string `json:"version"`
	Status   string `json:"status"` // installed | failed
	Detail   string `json:"detail"`
}
