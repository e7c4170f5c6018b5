<?php

declare(strict_types=1);

namespace PushPull\Tests\Unit;

use PHPUnit\Framework\TestCase;
use PushPull\Bitrix\Messages;
use PushPull\Exception\InvalidArgumentException;

final class MessagesTest extends TestCase
{
    public function testCPushManagerMessageMapsToNotification(): void
    {
        $n = Messages::notification([
            'USER_ID' => [42, 43],
            'SKIP_USERS' => [43],
            'MESSAGE' => "  Hi there  ",
            'TITLE' => 'Chat',
            'PARAMS' => ['CATEGORY' => 'IM_MESSAGE', 'chat' => 17],
            'TAG' => 'IM_MESS',
            'SUB_TAG' => 'IM_MESS_17',
            'BADGE' => '3',
            'SOUND' => 'default',
            'EXPIRY' => 600,
            'APP_ID' => 'Bitrix24',
            'SEND_IMMEDIATELY' => 'Y',
            'ADVANCED_PARAMS' => ['id' => 'IM_MESS_17', 'avatarUrl' => 'https://x/a.png'],
        ]);
        $this->assertSame([
            'users' => ['42', '43'],
            'skip_users' => ['43'],
            'body' => 'Hi there',
            'title' => 'Chat',
            'category' => 'IM_MESSAGE',
            'tag' => 'IM_MESS',
            'sub_tag' => 'IM_MESS_17',
            'badge' => 3,
            'sound' => 'default',
            'expiry' => 600,
            'app_id' => 'Bitrix24',
            'when_online' => 'send',
            'data' => ['chat' => 17, 'id' => 'IM_MESS_17', 'avatarUrl' => 'https://x/a.png'],
        ], $n);
    }

    public function testSenderFieldsOverrideTitleAndBodyLikeTheApplePayload(): void
    {
        $n = Messages::notification([
            'USER_ID' => 1,
            'MESSAGE' => 'Anna: hi',
            'ADVANCED_PARAMS' => ['senderName' => 'Anna', 'senderMessage' => 'hi', 'category' => 'CHAT', 'isVoip' => true],
        ]);
        $this->assertSame('Anna', $n['title']);
        $this->assertSame('hi', $n['body']);
        $this->assertSame('CHAT', $n['category']);
        $this->assertSame('voip', $n['push_type']);
        $this->assertArrayNotHasKey('data', $n, 'consumed ADVANCED_PARAMS must not leak into data');
    }

    public function testBitrixNoneValuesAreLeftOut(): void
    {
        $n = Messages::notification(['USER_ID' => '7', 'BADGE' => -1, 'EXPIRY' => -5, 'MESSAGE' => '', 'SOUND' => '', 'PARAMS' => '']);
        $this->assertSame(['users' => ['7']], $n);
    }

    public function testParamsAsJsonTextOrPlainText(): void
    {
        $n = Messages::notification(['USER_ID' => 1, 'PARAMS' => '{"chat":17,"CATEGORY":"X"}']);
        $this->assertSame(['chat' => 17], $n['data']);
        $this->assertSame('X', $n['category']);
        $n = Messages::notification(['USER_ID' => 1, 'PARAMS' => 'IM_MESS|17']);
        $this->assertSame(['params' => 'IM_MESS|17'], $n['data']);
    }

    public function testFlags(): void
    {
        $this->assertSame(['users' => ['1'], 'when_online' => 'send', 'priority' => 'high'], Messages::notification(['USER_ID' => 1, 'IMPORTANT' => 'Y']));
        $this->assertSame(['users' => ['1'], 'delay' => Messages::DEFERRED_DELAY], Messages::notification(['USER_ID' => 1, 'SEND_DEFERRED' => 'Y']));
        $this->assertSame(['users' => ['1']], Messages::notification(['USER_ID' => 1, 'SEND_IMMEDIATELY' => 'N']));
    }

    public function testPlainApiShapeAndLowercaseBitrixKeysAreAccepted(): void
    {
        $n = Messages::notification(['users' => [5], 'body' => 'b', 'data' => ['k' => 'v'], 'priority' => 'normal', 'message' => 'm']);
        $this->assertEquals(['users' => ['5'], 'body' => 'm', 'data' => ['k' => 'v'], 'priority' => 'normal'], $n);
    }

    public function testUnknownPushKeyIsNamed(): void
    {
        try {
            Messages::notification(['USER_ID' => 1, 'MESAGE' => 'typo']);
            $this->fail('no exception');
        } catch (InvalidArgumentException $e) {
            $this->assertSame('message.MESAGE', $e->getField());
            $this->assertSame('invalid_argument', $e->getErrorCode());
            $this->assertSame(0, $e->getHttpStatus());
        }
    }

    public function testEventWithPushBlock(): void
    {
        $e = Messages::event([
            'module_id' => 'im',
            'command' => 'message',
            'params' => [],
            'extra' => [],
            'expiry' => '120',
            'skip_users' => [3],
            'push' => ['message' => 'New message', 'advanced_params' => ['senderName' => 'Anna'], 'send_immediately' => 'Y', 'user_id' => 9],
        ]);
        $this->assertEquals(new \stdClass(), $e['params'], 'empty params must go out as a JSON object');
        $this->assertEquals(new \stdClass(), $e['extra']);
        $this->assertSame(120, $e['expiry']);
        $this->assertSame(['3'], $e['skip_users']);
        $this->assertSame(['body' => 'New message', 'when_online' => 'send', 'title' => 'Anna'], $e['push'], 'recipients inside push are dropped: the event decides them');
        $this->assertSame('{"module_id":"im","command":"message","params":{},"extra":{},"expiry":120,"skip_users":["3"],"push":{"body":"New message","when_online":"send","title":"Anna"}}', json_encode($e));
    }

    /**
     * @return array<string, array{array<string, mixed>, string}>
     */
    public function badEvents(): array
    {
        return [
            'missing command' => [['module_id' => 'im'], 'message.command'],
            'empty module' => [['module_id' => '', 'command' => 'x'], 'message.module_id'],
            'unknown key' => [['module_id' => 'im', 'command' => 'x', 'paramz' => 1], 'message.paramz'],
            'bad user id' => [['module_id' => 'im', 'command' => 'x', 'skip_users' => [1, null]], 'message.skip_users[1]'],
            'bad expiry' => [['module_id' => 'im', 'command' => 'x', 'expiry' => 'soon'], 'message.expiry'],
            'bad push key' => [['module_id' => 'im', 'command' => 'x', 'push' => ['MESSAGEE' => 1]], 'message.push.MESSAGEE'],
        ];
    }

    /**
     * @dataProvider badEvents
     * @param array<string, mixed> $message
     */
    public function testBadEventNamesTheField(array $message, string $field): void
    {
        try {
            Messages::event($message);
            $this->fail('no exception');
        } catch (InvalidArgumentException $e) {
            $this->assertSame($field, $e->getField());
        }
    }
}
