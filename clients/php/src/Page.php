<?php

declare(strict_types=1);

namespace PushPull;

use PushPull\Exception\InvalidArgumentException;

/**
 * HTML for pages: the `<script>` tags that load the browser client and
 * connect it for one user (the role of Bitrix's `CJSCore::Init(['pull'])`
 * plus the pull config).
 */
final class Page
{
    /** Options of {@see clientScript()} and their defaults. */
    public const DEFAULTS = [
        'client_url' => '',   // public URL of the client listener; default: the Client's client_url
        'token' => '',        // a token to use instead of asking the server for one
        'jwt_secret' => '',   // mint the token locally (Tokens::mint) instead of asking the server
        'ttl' => null,        // token lifetime, seconds
        'tags' => [],         // tags the page may extend by itself (also put in the token)
        'watch' => [],        // tags to extendWatch() right after start (must be granted or in tags)
        'var' => 'pullClient', // global variable that holds the PullClient
        'on_event' => '',     // name of a global function(module_id, command, params, extra)
        'client_options' => [], // passed to new PullClient({...}): transport, autoAck, debug, ...
        'nonce' => '',        // CSP nonce for both tags
        'start' => true,      // call start()
    ];

    private const IDENT = '/^[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*$/';

    /**
     * Two `<script>` tags: one loading `/pullclient.js` from the client
     * listener, one creating `window[var] = new PullClient({baseUrl, token,
     * ...})` and starting it. Everything that comes from PHP is encoded so
     * that it cannot end the script or the attribute (`</script>`, quotes,
     * `<!--`, U+2028 are all escaped).
     *
     * @param int|string $userId
     * @param array<string, mixed> $options see {@see DEFAULTS}
     * @throws InvalidArgumentException naming the bad option
     */
    public static function clientScript($userId, array $options = []): string
    {
        foreach ($options as $k => $_) {
            if (!array_key_exists($k, self::DEFAULTS)) {
                throw new InvalidArgumentException('invalid_argument', 'unknown option', 'options.' . $k);
            }
        }
        $o = $options + self::DEFAULTS;
        $base = rtrim((string) $o['client_url'], '/');
        if ($base === '') {
            $base = PushPull::client()->clientUrl();
        }
        if (!preg_match('~^https?://[^\s/?#]+(/[^\s?#]*)?$~i', $base)) {
            throw new InvalidArgumentException('invalid_argument', 'must be the http(s) URL of the client listener (option or Client option client_url)', 'options.client_url');
        }
        foreach (['var', 'on_event'] as $k) {
            if ($o[$k] !== '' && (!is_string($o[$k]) || !preg_match(self::IDENT, $o[$k]))) {
                throw new InvalidArgumentException('invalid_argument', 'must be a JavaScript identifier path', 'options.' . $k);
            }
        }
        if ($o['var'] === '') {
            throw new InvalidArgumentException('invalid_argument', 'required', 'options.var');
        }
        if (!is_array($o['client_options']) || ($o['client_options'] !== [] && array_is_list($o['client_options']))) {
            throw new InvalidArgumentException('invalid_argument', 'must be an associative array', 'options.client_options');
        }
        $token = (string) $o['token'];
        if ($token === '') {
            $ttl = $o['ttl'] === null ? null : (int) $o['ttl'];
            $token = $o['jwt_secret'] !== ''
                ? Tokens::mint((string) $o['jwt_secret'], $userId, $ttl ?? 43200, $o['tags'], 'web')
                : Tokens::forUser($userId, $ttl, $o['tags'], 'web');
        }

        $js = ['baseUrl' => $base, 'token' => $token] + $o['client_options'];
        $nonce = $o['nonce'] !== '' ? ' nonce="' . self::attr((string) $o['nonce']) . '"' : '';
        $lines = [];
        $lines[] = 'var pull = new PullClient(' . self::js($js) . ');';
        $lines[] = 'window[' . self::js($o['var']) . '] = pull;';
        if ($o['on_event'] !== '') {
            // The handler is looked up when an event arrives, so it may be
            // defined after this tag.
            $lines[] = 'pull.onPullEvent = function (m, c, p, e) { return ' . $o['on_event'] . '(m, c, p, e); };';
        }
        foreach ((array) $o['watch'] as $tag) {
            $lines[] = 'pull.extendWatch(' . self::js((string) $tag) . ');';
        }
        if ($o['start']) {
            $lines[] = 'pull.start();';
        }
        return '<script src="' . self::attr($base . '/pullclient.js') . '"' . $nonce . '></script>' . "\n"
            . '<script' . $nonce . ">\n(function () {\n  \"use strict\";\n  " . implode("\n  ", $lines) . "\n})();\n</script>\n";
    }

    /** Escapes text for a double-quoted HTML attribute. */
    public static function attr(string $s): string
    {
        return htmlspecialchars($s, ENT_QUOTES | ENT_SUBSTITUTE | ENT_HTML5, 'UTF-8');
    }

    /**
     * A JavaScript literal safe inside `<script>`: `<`, `>`, `&`, quotes and
     * all non-ASCII (U+2028/2029 included) are \u-escaped.
     *
     * @param mixed $v
     */
    public static function js($v): string
    {
        try {
            return json_encode($v, JSON_THROW_ON_ERROR | JSON_HEX_TAG | JSON_HEX_AMP | JSON_HEX_APOS | JSON_HEX_QUOT | JSON_UNESCAPED_SLASHES);
        } catch (\JsonException $e) {
            throw new InvalidArgumentException('invalid_argument', 'cannot encode as JSON: ' . $e->getMessage(), 'options');
        }
    }
}
