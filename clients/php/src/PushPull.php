<?php

declare(strict_types=1);

namespace PushPull;

use PushPull\Exception\InvalidArgumentException;

/**
 * The Client behind the static Bitrix-style facades (PullStack, PullWatch,
 * PushManager, Tokens, Devices, Options, Page).
 *
 * Bitrix code calls `CPullStack::AddByUser(...)` statically; to port it line
 * for line the facades are static too, and need one configured Client per
 * PHP process. Set it once at bootstrap with {@see setClient()}, or let
 * {@see client()} build it from the environment: PUSHPULL_URL (default
 * http://127.0.0.1:8895), PUSHPULL_API_KEY (required) and optionally
 * PUSHPULL_CLIENT_URL. Code that prefers dependency injection uses
 * {@see Client} directly and never touches this class.
 */
final class PushPull
{
    private static ?Client $client = null;

    /** Sets the Client the facades use (null: rebuild from the environment). */
    public static function setClient(?Client $client): void
    {
        self::$client = $client;
    }

    /**
     * The facades' Client.
     *
     * @throws InvalidArgumentException when none was set and PUSHPULL_API_KEY is missing
     */
    public static function client(): Client
    {
        if (self::$client === null) {
            $key = (string) getenv('PUSHPULL_API_KEY');
            if ($key === '') {
                throw new InvalidArgumentException('invalid_argument', 'no client configured: call PushPull\\PushPull::setClient() or set PUSHPULL_API_KEY', 'api_key');
            }
            $url = (string) getenv('PUSHPULL_URL');
            self::$client = new Client($url !== '' ? $url : 'http://127.0.0.1:8895', $key, [
                'client_url' => (string) getenv('PUSHPULL_CLIENT_URL'),
            ]);
        }
        return self::$client;
    }
}
