// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice A cross-chain message. Its id is `keccak256(abi.encode(message))`, i.e. the struct
/// encoded as one tuple `(uint8,uint64,uint64,uint64,address,address,bytes)`.
struct Message {
    uint8 version;
    uint64 srcChainId;
    uint64 dstChainId;
    uint64 nonce;
    address sender;
    address recipient;
    bytes payload;
}

/// @dev The only message version this gateway emits and accepts.
uint8 constant MESSAGE_VERSION = 1;
