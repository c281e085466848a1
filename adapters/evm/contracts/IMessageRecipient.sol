// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Implemented by contracts that receive messages from the Islands `Gateway`.
interface IMessageRecipient {
    /// @param id        the message id (`keccak256(abi.encode(message))`)
    /// @param srcChainId the chain the message was sent from
    /// @param sender    the account that called `Gateway.send` on the source chain
    /// @param payload   the application payload
    function handleMessage(bytes32 id, uint64 srcChainId, address sender, bytes calldata payload) external;
}
