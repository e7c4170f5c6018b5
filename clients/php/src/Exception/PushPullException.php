<?php

declare(strict_types=1);

namespace PushPull\Exception;

/**
 * Base of every exception this library throws, so a caller can catch all of
 * them with one clause.
 */
class PushPullException extends \RuntimeException
{
}
