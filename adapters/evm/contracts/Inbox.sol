// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IMessageRecipient} from "./IMessageRecipient.sol";

interface IGatewaySend {
    function send(uint64 dstChainId, address recipient, bytes calldata payload) external returns (bytes32);
}

/// @notice A minimal application on the Islands gateway: it sends its own payloads and keeps
/// what it receives. A payload whose first byte is 0xff is refused, so a failing recipient
/// can be shown on purpose; a "ping" is answered with a "pong" from inside the handler.
contract Inbox is IMessageRecipient {
    bytes32 private constant PING = keccak256("ping");
    address public immutable gateway;
    uint256 public received;
    bytes32 public lastId;
    uint64 public lastSrcChainId;
    address public lastSender;
    bytes public lastPayload;

    event Posted(bytes32 indexed id, uint64 indexed dstChainId, address indexed recipient, bytes payload);
    event Received(bytes32 indexed id, uint64 indexed srcChainId, address indexed sender, bytes payload);

    error OnlyGateway();
    error Refused();

    constructor(address gateway_) {
        gateway = gateway_;
    }

    /// @notice Send `payload` to `recipient` on `dstChainId` through the gateway.
    function post(uint64 dstChainId, address recipient, bytes calldata payload) external returns (bytes32 id) {
        id = IGatewaySend(gateway).send(dstChainId, recipient, payload);
        emit Posted(id, dstChainId, recipient, payload);
    }

    function handleMessage(bytes32 id, uint64 srcChainId, address sender, bytes calldata payload) external {
        if (msg.sender != gateway) revert OnlyGateway();
        if (payload.length > 0 && payload[0] == 0xff) revert Refused();
        received += 1;
        if (keccak256(payload) == PING) {
            bytes32 reply = IGatewaySend(gateway).send(srcChainId, sender, "pong");
            emit Posted(reply, srcChainId, sender, "pong");
        }
        lastId = id;
        lastSrcChainId = srcChainId;
        lastSender = sender;
        lastPayload = payload;
        emit Received(id, srcChainId, sender, payload);
    }
}
