<?php

declare(strict_types=1);

namespace PushPull\Internal;

use PushPull\Exception\ApiException;
use PushPull\Exception\TransportException;

/**
 * JSON over HTTP with cURL, retries and error mapping. Internal: use
 * {@see \PushPull\Client}.
 *
 * One cURL handle is kept per instance so that consecutive calls reuse the
 * connection (a PHP hit that publishes ten events opens one TCP connection).
 *
 * @internal
 */
final class Http
{
    /** Retry on any 5xx and any transport failure: the call is idempotent. */
    public const RETRY_IDEMPOTENT = 1;
    /**
     * Retry only when the server certainly did not act: no connection was
     * made, or it answered 503. Used for POST /events, which has no
     * idempotency key (a repeated event would reach users twice).
     */
    public const RETRY_UNSAFE = 2;

    private string $baseUrl;
    private string $apiKey;
    private float $connectTimeout;
    private float $timeout;
    private int $retries;
    private float $backoffBase;
    private float $backoffMax;
    private string $userAgent;
    /** @var callable(float):void */
    private $sleep;
    /** @var \CurlHandle|null */
    private $curl = null;

    /**
     * @param callable(float):void $sleep waits the given seconds (injectable for tests)
     */
    public function __construct(
        string $baseUrl,
        string $apiKey,
        float $connectTimeout,
        float $timeout,
        int $retries,
        float $backoffBase,
        float $backoffMax,
        string $userAgent,
        callable $sleep
    ) {
        $this->baseUrl = rtrim($baseUrl, '/');
        $this->apiKey = $apiKey;
        $this->connectTimeout = $connectTimeout;
        $this->timeout = $timeout;
        $this->retries = $retries;
        $this->backoffBase = $backoffBase;
        $this->backoffMax = $backoffMax;
        $this->userAgent = $userAgent;
        $this->sleep = $sleep;
    }

    public function __destruct()
    {
        $this->curl = null;
    }

    /** How many times a failed call is repeated (0: never). */
    public function retries(): int
    {
        return $this->retries;
    }

    /**
     * Sends one request and decodes the JSON answer.
     *
     * @param array<string, scalar>|null $query
     * @param mixed $body JSON-encoded when not null
     * @param bool $auth send the API key (false for /readyz)
     * @return array<mixed> the decoded body ([] for an empty one)
     * @throws ApiException|TransportException
     */
    public function call(string $method, string $path, ?array $query = null, $body = null, int $retry = self::RETRY_IDEMPOTENT, bool $auth = true): array
    {
        $url = $this->baseUrl . $path;
        if ($query) {
            $url .= '?' . http_build_query($query, '', '&', PHP_QUERY_RFC3986);
        }
        $payload = null;
        if ($body !== null) {
            $payload = Json::encode($body);
        }
        for ($attempt = 0; ; $attempt++) {
            try {
                return $this->once($method, $url, $payload, $auth);
            } catch (TransportException | ApiException $e) {
                $wait = $this->retryDelay($e, $attempt, $retry);
                if ($wait === null) {
                    throw $e;
                }
                ($this->sleep)($wait);
            }
        }
    }

    /**
     * Returns how long to wait before attempt+1, or null to give up.
     */
    private function retryDelay(\Throwable $e, int $attempt, int $retry): ?float
    {
        if ($attempt >= $this->retries) {
            return null;
        }
        $retryAfter = null;
        if ($e instanceof TransportException) {
            if ($retry === self::RETRY_UNSAFE && !$e->wasConnectFailure()) {
                return null;
            }
        } elseif ($e instanceof ApiException) {
            $status = $e->getHttpStatus();
            if ($status < 500) {
                return null; // 4xx (429 included) is the caller's to handle
            }
            if ($retry === self::RETRY_UNSAFE && $status !== 503) {
                return null;
            }
            if ($e instanceof \PushPull\Exception\UnavailableException) {
                $retryAfter = $e->getRetryAfter();
            }
        }
        // Full jitter: a crowd of PHP workers retrying after a restart spreads out.
        $cap = min($this->backoffMax, $this->backoffBase * (2 ** $attempt));
        $wait = $cap / 2 + (mt_rand() / mt_getrandmax()) * $cap / 2;
        if ($retryAfter !== null) {
            if ($retryAfter > $this->backoffMax) {
                return null; // the server asks for longer than we may block a PHP hit
            }
            $wait = max($wait, $retryAfter);
        }
        return $wait;
    }

    /**
     * @return array<mixed>
     */
    private function once(string $method, string $url, ?string $payload, bool $auth): array
    {
        if ($this->curl === null) {
            $h = curl_init();
            if ($h === false) {
                throw new TransportException('curl_init failed');
            }
            $this->curl = $h;
        } else {
            curl_reset($this->curl);
        }
        $ch = $this->curl;
        $headers = ['Accept: application/json', 'Expect:'];
        if ($auth) {
            $headers[] = 'Authorization: Bearer ' . $this->apiKey;
        }
        if ($payload !== null) {
            $headers[] = 'Content-Type: application/json';
        }
        $respHeaders = [];
        curl_setopt_array($ch, [
            CURLOPT_URL => $url,
            CURLOPT_CUSTOMREQUEST => $method,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_HTTPHEADER => $headers,
            CURLOPT_USERAGENT => $this->userAgent,
            CURLOPT_CONNECTTIMEOUT_MS => (int) ceil($this->connectTimeout * 1000),
            CURLOPT_TIMEOUT_MS => (int) ceil($this->timeout * 1000),
            CURLOPT_NOSIGNAL => true,
            CURLOPT_FOLLOWLOCATION => false,
            CURLOPT_PROTOCOLS => CURLPROTO_HTTP | CURLPROTO_HTTPS,
            CURLOPT_HEADERFUNCTION => static function ($ch, string $line) use (&$respHeaders): int {
                $p = strpos($line, ':');
                if ($p !== false) {
                    $respHeaders[strtolower(trim(substr($line, 0, $p)))] = trim(substr($line, $p + 1));
                }
                return strlen($line);
            },
        ]);
        if ($payload !== null) {
            curl_setopt($ch, CURLOPT_POSTFIELDS, $payload);
        } elseif ($method !== 'GET' && $method !== 'HEAD') {
            curl_setopt($ch, CURLOPT_POSTFIELDS, '');
        }
        $raw = curl_exec($ch);
        if ($raw === false) {
            $errno = curl_errno($ch);
            throw new TransportException(sprintf('%s %s: %s', $method, self::redactUrl($url), curl_error($ch)), $errno);
        }
        $status = (int) curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
        $raw = (string) $raw;
        if ($status >= 200 && $status < 300) {
            if (trim($raw) === '') {
                return [];
            }
            try {
                $v = json_decode($raw, true, 512, JSON_THROW_ON_ERROR | JSON_BIGINT_AS_STRING);
            } catch (\JsonException $e) {
                throw new TransportException(sprintf('%s %s: answer is not JSON: %s', $method, self::redactUrl($url), $e->getMessage()), 0, $e);
            }
            return is_array($v) ? $v : ['value' => $v];
        }
        throw self::errorFrom($status, $raw, $respHeaders);
    }

    /**
     * @param array<string, string> $headers lower-cased names
     */
    private static function errorFrom(int $status, string $raw, array $headers): ApiException
    {
        $code = ApiException::codeForStatus($status);
        $message = trim(substr($raw, 0, 200));
        $field = '';
        $decoded = json_decode($raw, true);
        if (is_array($decoded) && isset($decoded['error']) && is_array($decoded['error'])) {
            $err = $decoded['error'];
            $code = is_string($err['code'] ?? null) && $err['code'] !== '' ? $err['code'] : $code;
            $message = is_string($err['message'] ?? null) ? $err['message'] : $message;
            $field = is_string($err['field'] ?? null) ? $err['field'] : '';
        }
        if ($message === '') {
            $message = 'HTTP ' . $status;
        }
        $retryAfter = null;
        if (isset($headers['retry-after'])) {
            $retryAfter = self::parseRetryAfter($headers['retry-after']);
        }
        return ApiException::fromResponse($status, $code, $message, $field, $retryAfter, $headers['x-request-id'] ?? '');
    }

    /** Seconds from a Retry-After value (delta-seconds or HTTP date). */
    public static function parseRetryAfter(string $v): ?float
    {
        $v = trim($v);
        if ($v === '') {
            return null;
        }
        if (is_numeric($v)) {
            return max(0.0, (float) $v);
        }
        $t = strtotime($v);
        return $t === false ? null : (float) max(0, $t - time());
    }

    /** The URL without query values that may hold tokens. */
    private static function redactUrl(string $url): string
    {
        $q = strpos($url, '?');
        return $q === false ? $url : substr($url, 0, $q) . '?…';
    }
}
