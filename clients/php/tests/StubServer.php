<?php

declare(strict_types=1);

namespace PushPull\Tests;

/**
 * A `php -S` process running tests/stub/router.php on a free port. The test
 * scripts its answers and reads back the requests it received.
 */
final class StubServer
{
    /** @var resource */
    private $proc;
    private string $dir;
    public string $url;

    public function __construct()
    {
        $this->dir = sys_get_temp_dir() . '/pushpull-stub-' . bin2hex(random_bytes(6));
        mkdir($this->dir, 0700);
        $port = self::freePort();
        $this->url = 'http://127.0.0.1:' . $port;
        $cmd = [PHP_BINARY, '-S', '127.0.0.1:' . $port, __DIR__ . '/stub/router.php'];
        $env = ['STUB_DIR' => $this->dir, 'PATH' => (string) getenv('PATH')];
        $proc = proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => ['file', '/dev/null', 'w'], 2 => ['file', $this->dir . '/server.log', 'w']], $pipes, null, $env);
        if (!is_resource($proc)) {
            throw new \RuntimeException('cannot start php -S');
        }
        $this->proc = $proc;
        $deadline = microtime(true) + 10;
        while (true) {
            $s = @fsockopen('127.0.0.1', $port, $errno, $errstr, 0.2);
            if ($s) {
                fclose($s);
                break;
            }
            if (microtime(true) > $deadline) {
                $this->stop();
                throw new \RuntimeException('php -S did not start listening on ' . $port);
            }
            usleep(20000); // polling a condition with a deadline, not waiting blindly
        }
    }

    /** A TCP port nobody listens on right now. */
    public static function freePort(): int
    {
        $s = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
        if ($s === false) {
            throw new \RuntimeException($errstr);
        }
        $name = (string) stream_socket_get_name($s, false);
        fclose($s);
        return (int) substr($name, strrpos($name, ':') + 1);
    }

    /**
     * Sets the answers to the next requests, in order.
     *
     * @param list<array<string, mixed>> $responses
     */
    public function script(array $responses): void
    {
        file_put_contents($this->dir . '/script.json', json_encode($responses));
        @unlink($this->dir . '/requests.jsonl');
    }

    /**
     * The requests received since the last script().
     *
     * @return list<array{method: string, uri: string, headers: array<string, string>, body: string}>
     */
    public function requests(): array
    {
        $out = [];
        foreach (@file($this->dir . '/requests.jsonl', FILE_IGNORE_NEW_LINES) ?: [] as $line) {
            $out[] = json_decode($line, true);
        }
        return $out;
    }

    public function stop(): void
    {
        if (is_resource($this->proc)) {
            proc_terminate($this->proc);
            proc_close($this->proc);
        }
        foreach (glob($this->dir . '/*') ?: [] as $f) {
            unlink($f);
        }
        @rmdir($this->dir);
    }
}
