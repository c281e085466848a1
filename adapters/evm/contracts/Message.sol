// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice A cross-chain message. Its id is `keccak256(abi.encode(message))`, i.e. the struct
/// encoded as one tuple `(uint8,uint64,address,uint64,uint64,address,address,uint64,bytes)`.
/// The id names the source gateway, so two gateways on one chain never share an id.
struct Message {
    uint8 version;
    uint64 srcChainId;
    address srcGateway; // the gateway that emitted it
    uint64 dstChainId;
    uint64 nonce;
    address sender;
    address recipient;
    uint64 gasLimit; // gas the destination gateway forwards to handleMessage, exactly
    bytes payload;
}

/// @dev The only message version this gateway emits and accepts.
uint8 constant MESSAGE_VERSION = 2;
