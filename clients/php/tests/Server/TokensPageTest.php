<?php

declare(strict_types=1);

namespace PushPull\Tests\Server;

use PushPull\Page;
use PushPull\Tokens;

/**
 * Tokens, config and the page snippet against the real client listener.
 */
final class TokensPageTest extends ServerTestCase
{
    public function testForUser(): void
    {
        $u = self::user();
        $jwt = $this->endpoint('POST /api/v1/tokens', fn () => Tokens::forUser($u, 600, ['IM_CHAT_1']));
        $claims = json_decode(base64_decode(strtr(explode('.', $jwt)[1], '-_', '+/')), true);
        $this->assertSame((string) $u, $claims['sub']);
        $this->assertSame(['IM_CHAT_1'], $claims['tags']);
        $this->assertEqualsWithDelta(time() + 600, $claims['exp'], 5);
    }

    public function testConfig(): void
    {
        $u = self::user();
        $cfg = $this->endpoint('GET /api/v1/config', fn () => $this->client->config($u));
        $this->assertIsString($cfg['token'] ?? null);
    }

    public function testLocallyMintedTokenIsAcceptedByTheClientListener(): void
    {
        $u = self::user();
        $events = $this->deliveredTo($u, fn () => $this->endpoint('POST /api/v1/events', fn () => $this->client->publishEvent(['users' => [$u], 'module_id' => 'm', 'command' => 'c', 'expiry' => 60])));
        $this->assertCount(1, $this->delivered($events));
    }

    public function testClientScriptLoadsTheServedClient(): void
    {
        $u = self::user();
        $html = $this->endpoint('POST /api/v1/tokens', fn () => Page::clientScript($u, ['watch' => ['IM_CHAT_1'], 'tags' => ['IM_CHAT_1']]));
        $this->assertMatchesRegularExpression('~<script src="([^"]+)"></script>~', $html);
        preg_match('~<script src="([^"]+)"></script>~', $html, $m);
        $src = html_entity_decode($m[1], ENT_QUOTES | ENT_HTML5);
        $this->assertSame($this->clientUrl . '/pullclient.js', $src);
        $ch = curl_init($src);
        curl_setopt_array($ch, [CURLOPT_RETURNTRANSFER => true, CURLOPT_TIMEOUT => 5]);
        $js = (string) curl_exec($ch);
        $this->assertSame(200, curl_getinfo($ch, CURLINFO_RESPONSE_CODE));
        $this->assertStringContainsString('class PullClient', $js, 'the page loads the client the script then uses');
    }
}
