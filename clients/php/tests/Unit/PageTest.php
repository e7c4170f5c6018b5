<?php

declare(strict_types=1);

namespace PushPull\Tests\Unit;

use PHPUnit\Framework\TestCase;
use PushPull\Client;
use PushPull\Exception\InvalidArgumentException;
use PushPull\Page;
use PushPull\PushPull;
use PushPull\Tokens;

final class PageTest extends TestCase
{
    protected function tearDown(): void
    {
        PushPull::setClient(null);
    }

    /** The JS object literal passed to new PullClient(...), decoded. */
    private static function clientOptions(string $html): array
    {
        if (!preg_match('/new PullClient\((.*)\);/', $html, $m)) {
            throw new \RuntimeException('no PullClient call in ' . $html);
        }
        return json_decode($m[1], true, 512, JSON_THROW_ON_ERROR);
    }

    public function testHostileValuesCannotLeaveTheScriptOrAttribute(): void
    {
        $token = "a</script><script>alert(1)</script>\u{2028}'\"&<!--";
        $html = Page::clientScript(42, [
            'token' => $token,
            'client_url' => 'https://push.example.com/x"y',
            'watch' => ['</script>'],
            'nonce' => '"><script>',
            'client_options' => ['transport' => 'longpoll', 'debug' => true],
        ]);
        // Exactly two script elements, each closed once.
        $this->assertSame(2, substr_count(strtolower($html), '<script'), $html);
        $this->assertSame(2, substr_count(strtolower($html), '</script>'), $html);
        $this->assertStringNotContainsString('<!--', $html);
        $this->assertStringNotContainsString("\u{2028}", $html);
        $this->assertStringContainsString('src="https://push.example.com/x&quot;y/pullclient.js"', $html);
        $this->assertStringContainsString('nonce="&quot;&gt;&lt;script&gt;"', $html);
        // The values survive the escaping intact.
        $opts = self::clientOptions($html);
        $this->assertSame($token, $opts['token']);
        $this->assertSame('https://push.example.com/x"y', $opts['baseUrl']);
        $this->assertSame('longpoll', $opts['transport']);
        $this->assertTrue($opts['debug']);
        $this->assertStringContainsString('pull.extendWatch("\u003C/script\u003E");', $html);
        $this->assertStringContainsString('pull.start();', $html);
    }

    public function testUsesTheClientsClientUrlAndMintsLocally(): void
    {
        PushPull::setClient(new Client('http://127.0.0.1:1', 'k0123456789abcdef', ['client_url' => 'https://push.example.com/']));
        $secret = str_repeat('s', 32);
        $html = Page::clientScript(7, ['jwt_secret' => $secret, 'var' => 'app.pull', 'on_event' => 'app.onPull', 'start' => false]);
        $opts = self::clientOptions($html);
        $this->assertSame('https://push.example.com', $opts['baseUrl']);
        $claims = json_decode(base64_decode(strtr(explode('.', $opts['token'])[1], '-_', '+/')), true);
        $this->assertSame('7', $claims['sub']);
        $this->assertSame('web', $claims['client']);
        $this->assertStringContainsString('window["app.pull"] = pull;', $html);
        $this->assertStringContainsString('return app.onPull(m, c, p, e);', $html);
        $this->assertStringNotContainsString('pull.start()', $html);
    }

    /**
     * @return array<string, array{array<string, mixed>, string}>
     */
    public function badOptions(): array
    {
        return [
            'javascript url' => [['client_url' => 'javascript:alert(1)', 'token' => 't'], 'options.client_url'],
            'handler injection' => [['client_url' => 'https://a', 'token' => 't', 'on_event' => 'f);alert(1'], 'options.on_event'],
            'var injection' => [['client_url' => 'https://a', 'token' => 't', 'var' => 'a"]'], 'options.var'],
            'unknown option' => [['client_url' => 'https://a', 'token' => 't', 'tranport' => 'x'], 'options.tranport'],
        ];
    }

    /**
     * @dataProvider badOptions
     * @param array<string, mixed> $options
     */
    public function testRejectsBadOptions(array $options, string $field): void
    {
        try {
            Page::clientScript(1, $options);
            $this->fail('no exception');
        } catch (InvalidArgumentException $e) {
            $this->assertSame($field, $e->getField());
        }
    }

    public function testMintedTokenVerifies(): void
    {
        $secret = str_repeat('k', 40);
        $jwt = Tokens::mint($secret, 42, 60, ['IM_CHAT_17'], 'mobile', 1000);
        [$h, $p, $sig] = explode('.', $jwt);
        $expected = rtrim(strtr(base64_encode(hash_hmac('sha256', "$h.$p", $secret, true)), '+/', '-_'), '=');
        $this->assertSame($expected, $sig);
        $this->assertSame(['alg' => 'HS256', 'typ' => 'JWT'], json_decode(base64_decode(strtr($h, '-_', '+/')), true));
        $this->assertSame(['sub' => '42', 'iat' => 1000, 'exp' => 1060, 'tags' => ['IM_CHAT_17'], 'client' => 'mobile'], json_decode(base64_decode(strtr($p, '-_', '+/')), true));
        $this->expectException(InvalidArgumentException::class);
        Tokens::mint('short', 1);
    }
}
