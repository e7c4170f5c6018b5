<?php

declare(strict_types=1);

namespace PushPull;

use PushPull\Exception\InvalidArgumentException;
use PushPull\Internal\Ids;
use PushPull\Internal\Json;

/**
 * Client tokens: the JWT a browser or app presents to the client listener.
 */
final class Tokens
{
    /**
     * A fresh token for $userId from the server (POST /api/v1/tokens).
     *
     * @param int|string $userId
     * @param int|null $ttl seconds; null: the server default (43200)
     * @param list<string> $tags tags the client may extend by itself
     * @param string|null $client web | mobile | desktop
     */
    public static function forUser($userId, ?int $ttl = null, array $tags = [], ?string $client = null): string
    {
        $r = PushPull::client()->createToken($userId, $ttl, $tags, $client);
        if (!isset($r['token']) || !is_string($r['token'])) {
            throw new InvalidArgumentException('invalid_argument', 'the server answered without a token', 'token');
        }
        return $r['token'];
    }

    /**
     * Mints the same token locally, without a request, for backends that
     * hold the gateway's client JWT secret (`client.jwt_secret`): HS256 with
     * claims sub, iat, exp and optional tags and client.
     *
     * @param int|string $userId
     * @param list<string> $tags
     * @param int|null $now unix seconds (for tests); null: time()
     */
    public static function mint(string $secret, $userId, int $ttl = 43200, array $tags = [], ?string $client = null, ?int $now = null): string
    {
        if (strlen($secret) < 32) {
            throw new InvalidArgumentException('invalid_argument', 'must be at least 32 bytes', 'secret');
        }
        if ($ttl <= 0) {
            throw new InvalidArgumentException('invalid_argument', 'must be positive', 'ttl');
        }
        $now ??= time();
        $claims = ['sub' => Ids::one($userId, 'user'), 'iat' => $now, 'exp' => $now + $ttl];
        if ($tags) {
            $claims['tags'] = Ids::list($tags, 'tags');
        }
        if ($client !== null) {
            $claims['client'] = $client;
        }
        $segments = [self::b64(Json::encode(['alg' => 'HS256', 'typ' => 'JWT'])), self::b64(Json::encode($claims))];
        $signingInput = implode('.', $segments);
        return $signingInput . '.' . self::b64(hash_hmac('sha256', $signingInput, $secret, true));
    }

    private static function b64(string $raw): string
    {
        return rtrim(strtr(base64_encode($raw), '+/', '-_'), '=');
    }
}
