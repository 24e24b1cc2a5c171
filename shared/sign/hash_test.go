package sign

import (
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

func TestSHA256(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"hello\n", "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"},
	}
	for _, tt := range tests {
		if got := SHA256Hex([]byte(tt.in)); got != tt.want {
			t.Errorf("SHA256Hex(%q) = %s, want %s", tt.in, got, tt.want)
		}
		got, n, err := SHA256HexReader(strings.NewReader(tt.in))
		if err != nil || got != tt.want || n != int64(len(tt.in)) {
			t.Errorf("SHA256HexReader(%q) = %s, %d, %v", tt.in, got, n, err)
		}
	}
	boom := errors.New("boom")
	if _, _, err := SHA256HexReader(iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Errorf("read error not wrapped: %v", err)
	}
}

func TestSRI(t *testing.T) {
	const want = "sha256-WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM="
	if got := SRI(digestOf("hello\n")); got != want {
		t.Errorf("SRI = %s, want %s", got, want)
	}
	tests := []struct {
		hex, want string
		ok        bool
	}{
		{"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03", want, true},
		{"5891B5B522D5DF086D0FF0B110FBD9D21BB4FC7163AF34D08286A2E846F6BE03", want, true},
		{"5891b5", "", false},
		{"not hex", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, err := SRIFromHex(tt.hex)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("SRIFromHex(%q) = %q, %v", tt.hex, got, err)
		}
	}
}

func TestFluxHMAC(t *testing.T) {
	tests := []struct{ secret, msg, want string }{
		{"dev-secret-key", "FLUX\x01hello world v2!", "db23fac0153ba928ec122007a597de90ebe571949b05ff7afa7f01b1f56dcec4"},
		// RFC 4231 test case 2.
		{"Jefe", "what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
	}
	for _, tt := range tests {
		if got := FluxHMAC(tt.secret, []byte(tt.msg)); got != tt.want {
			t.Errorf("FluxHMAC(%q, %q) = %s, want %s", tt.secret, tt.msg, got, tt.want)
		}
	}
}
