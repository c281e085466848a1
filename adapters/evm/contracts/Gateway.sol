// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

import {Message, MESSAGE_VERSION} from "./Message.sol";
import {IMessageRecipient} from "./IMessageRecipient.sol";

/// @title Islands Gateway
/// @notice Sends messages to other chains and delivers messages attested by a threshold of the
/// current validator set (EIP-712 signatures over `Attestation(bytes32 messageId,uint64 epoch)`).
contract Gateway is Ownable, Pausable, ReentrancyGuard, EIP712 {
    /// @notice EIP-712 type hash of the struct validators sign.
    bytes32 public constant ATTESTATION_TYPEHASH = keccak256("Attestation(bytes32 messageId,uint64 epoch)");

    /// @notice Gas kept back from the recipient call so that the failure path (undo + event) can run.
    /// A recipient that fails with less than `RECIPIENT_GAS_RESERVE + gas/32` left over (gas = what
    /// was available before the call) is taken to have run out of gas: `InsufficientGas` reverts.
    uint256 public constant RECIPIENT_GAS_RESERVE = 25_000;

    /// @dev At most this many bytes of a recipient's revert data are copied into `MessageFailed`.
    uint256 private constant MAX_REASON_LENGTH = 1024;

    uint64 private _epoch;
    uint64 private _outboundNonce;
    uint256 private _threshold;
    address[] private _validators;
    /// @dev An address is a validator iff `_memberEpoch[a] == _epoch`; a set change bumps the epoch,
    /// so every older membership (and every signature bound to an older epoch) dies at once.
    mapping(address => uint64) private _memberEpoch;
    mapping(bytes32 => bool) private _delivered;

    event MessageSent(
        bytes32 indexed id, uint64 indexed dstChainId, address indexed sender, uint64 nonce, address recipient, bytes payload
    );
    event MessageDelivered(bytes32 indexed id, uint64 indexed srcChainId, uint64 nonce);
    event MessageFailed(bytes32 indexed id, uint64 indexed srcChainId, bytes reason);
    event MessageSkipped(bytes32 indexed id);
    event ValidatorSetChanged(uint64 indexed epoch, address[] validators, uint256 threshold);

    // --- errors named by docs/contracts.md ---
    error AlreadyDelivered(bytes32 id);
    error WrongDestination();
    error InsufficientSignatures();
    error UnknownSigner();
    error SignersNotAscending();
    // --- further errors ---
    error UnsupportedVersion(uint8 version);
    error InvalidSignatureLength();
    error LengthMismatch();
    error InsufficientGas();
    error InvalidDestination();
    error ZeroRecipient();
    error EmptyValidatorSet();
    error ZeroValidator();
    error DuplicateValidator(address validator);
    error InvalidThreshold(uint256 threshold, uint256 validators);
    /// @dev Used only as `MessageFailed.reason`: the message named the gateway as its recipient.
    error RecipientIsGateway();
    /// @dev Used only as `MessageFailed.reason`: the recipient has no code.
    error RecipientNotContract(address recipient);

    constructor(address initialOwner, address[] memory validators, uint256 threshold_)
        Ownable(initialOwner)
        EIP712("IslandsGateway", "1")
    {
        _setValidators(validators, threshold_); // epoch 0 -> 1
    }

    // ------------------------------------------------------------------ sending

    /// @notice Sends `payload` to `recipient` on chain `dstChainId`; returns the message id.
    /// @dev Not `nonReentrant`: it makes no external call, and a recipient may answer from
    /// inside `handleMessage` (request/reply applications).
    function send(uint64 dstChainId, address recipient, bytes calldata payload)
        external
        whenNotPaused
        returns (bytes32 id)
    {
        if (dstChainId == block.chainid) revert InvalidDestination();
        if (recipient == address(0)) revert ZeroRecipient();
        uint64 nonce = _outboundNonce++;
        Message memory m = Message({
            version: MESSAGE_VERSION,
            srcChainId: uint64(block.chainid),
            dstChainId: dstChainId,
            nonce: nonce,
            sender: msg.sender,
            recipient: recipient,
            payload: payload
        });
        id = keccak256(abi.encode(m));
        emit MessageSent(id, dstChainId, msg.sender, nonce, recipient, payload);
    }

    // ------------------------------------------------------------------ ids and digests

    /// @notice `keccak256(abi.encode(m))`.
    function messageId(Message calldata m) public pure returns (bytes32) {
        return keccak256(abi.encode(m));
    }

    /// @notice The EIP-712 digest validators sign for message `id` under validator-set `epoch`.
    function attestationDigest(bytes32 id, uint64 epoch_) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(ATTESTATION_TYPEHASH, id, epoch_)));
    }

    // ------------------------------------------------------------------ delivery

    /// @notice Delivers one attested message. Reverts if it was already delivered; a recipient
    /// failure does not revert but emits `MessageFailed` and leaves the message undelivered.
    function deliver(Message calldata m, bytes[] calldata signatures) external nonReentrant whenNotPaused {
        bytes32 id = _checkMessage(m);
        if (_delivered[id]) revert AlreadyDelivered(id);
        _verifySignatures(id, signatures);
        _execute(id, m);
    }

    /// @notice Delivers several attested messages; already delivered ones emit `MessageSkipped`.
    function deliverBatch(Message[] calldata ms, bytes[][] calldata signatures) external nonReentrant whenNotPaused {
        uint256 n = ms.length;
        if (n != signatures.length) revert LengthMismatch();
        for (uint256 i = 0; i < n; ++i) {
            Message calldata m = ms[i];
            bytes32 id = _checkMessage(m);
            if (_delivered[id]) {
                emit MessageSkipped(id);
                continue;
            }
            _verifySignatures(id, signatures[i]);
            _execute(id, m);
        }
    }

    function delivered(bytes32 id) external view returns (bool) {
        return _delivered[id];
    }

    // ------------------------------------------------------------------ admin

    function setValidators(address[] calldata validators, uint256 threshold_) external onlyOwner {
        _setValidators(validators, threshold_);
    }

    function pause() external onlyOwner {
        _pause();
    }

    function unpause() external onlyOwner {
        _unpause();
    }

    // ------------------------------------------------------------------ views

    function epoch() external view returns (uint64) {
        return _epoch;
    }

    function threshold() external view returns (uint256) {
        return _threshold;
    }

    function getValidators() external view returns (address[] memory) {
        return _validators;
    }

    function isValidator(address account) external view returns (bool) {
        return account != address(0) && _memberEpoch[account] == _epoch;
    }

    /// @notice The nonce the next `send` will use.
    function outboundNonce() external view returns (uint64) {
        return _outboundNonce;
    }

    function localChainId() external view returns (uint64) {
        return uint64(block.chainid);
    }

    // ------------------------------------------------------------------ internals

    function _checkMessage(Message calldata m) private view returns (bytes32) {
        if (m.version != MESSAGE_VERSION) revert UnsupportedVersion(m.version);
        if (m.dstChainId != block.chainid) revert WrongDestination();
        return messageId(m);
    }

    /// @dev Every signature must be 65 bytes, recover (non-malleably) to a member of the current
    /// set, and the signers must be strictly ascending; there must be at least `threshold` of them.
    function _verifySignatures(bytes32 id, bytes[] calldata signatures) private view {
        uint256 n = signatures.length;
        if (n < _threshold) revert InsufficientSignatures();
        uint64 currentEpoch = _epoch;
        bytes32 digest = attestationDigest(id, currentEpoch);
        address last = address(0);
        for (uint256 i = 0; i < n; ++i) {
            bytes calldata sig = signatures[i];
            if (sig.length != 65) revert InvalidSignatureLength();
            address signer = ECDSA.recoverCalldata(digest, sig);
            if (signer <= last) revert SignersNotAscending();
            if (_memberEpoch[signer] != currentEpoch) revert UnknownSigner();
            last = signer;
        }
    }

    /// @dev Check-effects-interactions: mark delivered, call, undo the mark if the call failed.
    function _execute(bytes32 id, Message calldata m) private {
        _delivered[id] = true;
        (bool ok, bytes memory reason) = _callRecipient(id, m);
        if (ok) {
            emit MessageDelivered(id, m.srcChainId, m.nonce);
        } else {
            _delivered[id] = false;
            emit MessageFailed(id, m.srcChainId, reason);
        }
    }

    /// @dev Calls `handleMessage` (a low-level call: the same outcomes as try/catch with
    /// `catch (bytes memory reason)`, but with bounded copying of the revert data). Every revert or
    /// panic of the recipient is returned as a failure, except a failure for lack of gas, which
    /// reverts with `InsufficientGas` (see below). The gateway itself and code-less accounts are
    /// never called. At most `MAX_REASON_LENGTH` bytes of revert data are copied, so a recipient
    /// cannot make the failure path run out of gas by returning huge revert data.
    function _callRecipient(bytes32 id, Message calldata m) private returns (bool ok, bytes memory reason) {
        address recipient = m.recipient;
        if (recipient == address(this)) {
            return (false, abi.encodeWithSelector(RecipientIsGateway.selector));
        }
        if (recipient.code.length == 0) {
            return (false, abi.encodeWithSelector(RecipientNotContract.selector, recipient));
        }
        bytes memory data =
            abi.encodeCall(IMessageRecipient.handleMessage, (id, m.srcChainId, m.sender, m.payload));
        uint256 gasBefore = gasleft();
        uint256 gasForCall = gasBefore > RECIPIENT_GAS_RESERVE ? gasBefore - RECIPIENT_GAS_RESERVE : 0;
        assembly ("memory-safe") {
            ok := call(gasForCall, recipient, 0, add(data, 0x20), mload(data), 0, 0)
        }
        if (!ok) {
            // A recipient that failed after using (nearly) all the gas it was given (at most 1/64 of
            // it left over, as when a nested call runs out) may only have lacked gas: the caller,
            // not the recipient, decides that. Revert the whole transaction instead of recording a
            // failure, so a relayer cannot make a message fail by under-supplying gas and
            // eth_estimateGas finds a limit at which the recipient runs to completion.
            if (gasleft() <= RECIPIENT_GAS_RESERVE + gasBefore / 32) revert InsufficientGas();
            uint256 size;
            assembly ("memory-safe") {
                size := returndatasize()
            }
            if (size > MAX_REASON_LENGTH) size = MAX_REASON_LENGTH;
            reason = new bytes(size);
            assembly ("memory-safe") {
                returndatacopy(add(reason, 0x20), 0, size)
            }
        }
    }

    function _setValidators(address[] memory validators, uint256 threshold_) private {
        uint256 n = validators.length;
        if (n == 0) revert EmptyValidatorSet();
        if (threshold_ == 0 || threshold_ > n) revert InvalidThreshold(threshold_, n);
        uint64 newEpoch = _epoch + 1;
        for (uint256 i = 0; i < n; ++i) {
            address v = validators[i];
            if (v == address(0)) revert ZeroValidator();
            if (_memberEpoch[v] == newEpoch) revert DuplicateValidator(v);
            _memberEpoch[v] = newEpoch;
        }
        _epoch = newEpoch;
        _threshold = threshold_;
        _validators = validators;
        emit ValidatorSetChanged(newEpoch, validators, threshold_);
    }
}
