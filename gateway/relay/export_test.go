package relay

// Exports of the PHP batch builders (phpbuild_test.go) for the external
// test package, whose end-to-end tests go through web/relay (which imports
// this package, so they cannot live in it).

// PHPMsg is a row of the portal's push queue.
type PHPMsg = pushMsg

// PHPKV builds a PHP associative array from alternating keys and values.
func PHPKV(pairs ...any) kv {
	var m kv
	for i := 0; i+1 < len(pairs); i += 2 {
		m = append(m, pair{pairs[i].(string), pairs[i+1]})
	}
	return m
}

// PHPMessage is BaseMessage after setFromArray.
type PHPMessage struct{ m *message }

// NewPHPMessage is BaseMessage::setFromArray (of 20.5 when v20).
func NewPHPMessage(token string, id int, m PHPMsg, v20 bool) PHPMessage {
	return PHPMessage{newMessage(token, id, m, v20)}
}

// AppleFrame, GoogleFrame, FCMFrame and HuaweiFrame are the base64 frames
// the module's services build.
func (p PHPMessage) AppleFrame(now int64, voip bool) string { return p.m.appleFrame(now, voip) }
func (p PHPMessage) GoogleFrame() string                    { return p.m.googleFrame() }
func (p PHPMessage) FCMFrame() string                       { return p.m.fcmFrame() }
func (p PHPMessage) HuaweiFrame() string                    { return p.m.huaweiFrame() }

// PHPAppGroup is one APP_ID's frames ("" for a frame that failed to
// build).
type PHPAppGroup = appGroup

// NewPHPAppGroup returns app's group of frames.
func NewPHPAppGroup(app string, frames ...string) PHPAppGroup { return appGroup{app, frames} }

// PHPBatch24, PHPBatchLegacy and PHPFormBody are getBatchWithModifier of
// 24.500, of 23.100 and older (host "" for 20.5), and http_build_query.
var (
	PHPBatch24     = batch24
	PHPBatchLegacy = batchLegacy
	PHPFormBody    = phpFormBody
)
