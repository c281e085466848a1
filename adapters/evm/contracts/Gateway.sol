// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

import {Message, MESSAGE_VERSION} from "./Message.sol";
import {IMessageRecipient} from "./IMessageRecipient.sol";

/// @title Islands Gateway
/// @notice Sends messages to other chains and delivers messages attested by a threshold of the
/// current validator set (EIP-712 signatures over `Attestation(bytes32 messageId,uint64 epoch)`).
/// Each message names the gas its recipient gets; delivery forwards exactly that much, so a
/// recipient can cost a relayer at most its gas limit plus a bounded overhead.
contract Gateway is Ownable2Step, Pausable, ReentrancyGuard, EIP712 {
    /// @notice EIP-712 type hash of the struct validators sign.
    bytes32 public constant ATTESTATION_TYPEHASH = keccak256("Attestation(bytes32 messageId,uint64 epoch)");

    /// @notice Gas limit of a message sent with the three-argument `send`.
    uint64 public constant DEFAULT_GAS_LIMIT = 200_000;
    /// @notice Bounds of a message's gas limit, checked by `send`.
    uint64 public constant MIN_GAS_LIMIT = 10_000;
    uint64 public constant MAX_GAS_LIMIT = 10_000_000;

    /// @notice Gas a delivery must have left, beyond `gasLimit + gasLimit / 63`, when it calls a
    /// recipient: the call's own cost and the failure path (undo the mark, `MessageFailed` with at
    /// most `MAX_REASON_LENGTH` bytes of reason). With less, the delivery reverts `InsufficientGas`.
    uint256 public constant DELIVERY_GAS_RESERVE = 20_000;

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
        bytes32 indexed id,
        uint64 indexed dstChainId,
        address indexed sender,
        uint64 nonce,
        address recipient,
        uint64 gasLimit,
        bytes payload
    );
    event MessageDelivered(bytes32 indexed id, uint64 indexed srcChainId, uint64 nonce);
    event MessageFailed(bytes32 indexed id, uint64 indexed srcChainId, bytes reason);
    event MessageSkipped(bytes32 indexed id);
    event MessageConsumed(bytes32 indexed id, uint64 indexed srcChainId, address indexed by);
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
    error GasLimitOutOfRange(uint64 gasLimit);
    error NotRecipient(address caller);
    /// @dev Used only as `MessageFailed.reason`: the message named the gateway as its recipient.
    error RecipientIsGateway();
    /// @dev Used only as `MessageFailed.reason`: the recipient has no code.
    error RecipientNotContract(address recipient);
    /// @dev Used only as `MessageFailed.reason`: the recipient failed without revert data after
    /// using all of its gas (ran out of gas, or hit an invalid instruction).
    error RecipientOutOfGas(uint64 gasLimit);

    constructor(address initialOwner, address[] memory validators, uint256 threshold_)
        Ownable(initialOwner)
        EIP712("IslandsGateway", "1")
    {
        _setValidators(validators, threshold_); // epoch 0 -> 1
    }

    // ------------------------------------------------------------------ sending

    /// @notice Sends `payload` to `recipient` on chain `dstChainId` with `DEFAULT_GAS_LIMIT`;
    /// returns the message id.
    /// @dev Not `nonReentrant`: it makes no external call, and a recipient may answer from
    /// inside `handleMessage` (request/reply applications).
    function send(uint64 dstChainId, address recipient, bytes calldata payload)
        external
        whenNotPaused
        returns (bytes32 id)
    {
        return _send(dstChainId, recipient, payload, DEFAULT_GAS_LIMIT);
    }

    /// @notice As `send`, with the gas the destination gateway forwards to `handleMessage`
    /// (between `MIN_GAS_LIMIT` and `MAX_GAS_LIMIT`).
    function send(uint64 dstChainId, address recipient, bytes calldata payload, uint64 gasLimit)
        external
        whenNotPaused
        returns (bytes32 id)
    {
        if (gasLimit < MIN_GAS_LIMIT || gasLimit > MAX_GAS_LIMIT) revert GasLimitOutOfRange(gasLimit);
        return _send(dstChainId, recipient, payload, gasLimit);
    }

    function _send(uint64 dstChainId, address recipient, bytes calldata payload, uint64 gasLimit)
        private
        returns (bytes32 id)
    {
        if (dstChainId == block.chainid) revert InvalidDestination();
        if (recipient == address(0)) revert ZeroRecipient();
        uint64 nonce = _outboundNonce++;
        Message memory m = Message({
            version: MESSAGE_VERSION,
            srcChainId: uint64(block.chainid),
            srcGateway: address(this),
            dstChainId: dstChainId,
            nonce: nonce,
            sender: msg.sender,
            recipient: recipient,
            gasLimit: gasLimit,
            payload: payload
        });
        id = keccak256(abi.encode(m));
        emit MessageSent(id, dstChainId, msg.sender, nonce, recipient, gasLimit, payload);
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

    /// @notice Delivers one attested message. Reverts if it was already delivered, or with
    /// `InsufficientGas` if the transaction cannot forward `m.gasLimit` to the recipient; a
    /// recipient failure does not revert but emits `MessageFailed` and leaves the message
    /// undelivered.
    function deliver(Message calldata m, bytes[] calldata signatures) external nonReentrant whenNotPaused {
        bytes32 id = _checkMessage(m);
        if (_delivered[id]) revert AlreadyDelivered(id);
        _verifySignatures(id, signatures);
        _execute(id, m);
    }

    /// @notice Delivers several attested messages; already delivered ones emit `MessageSkipped`,
    /// a failing recipient `MessageFailed`, and the batch goes on.
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

    /// @notice Marks an attested message delivered without calling its recipient: the recipient
    /// itself gives it up (e.g. a bridge returning a failed transfer to its sender). The same
    /// checks as `deliver`; only `m.recipient` may call it.
    function consume(Message calldata m, bytes[] calldata signatures)
        external
        nonReentrant
        whenNotPaused
        returns (bytes32 id)
    {
        if (msg.sender != m.recipient) revert NotRecipient(msg.sender);
        id = _checkMessage(m);
        if (_delivered[id]) revert AlreadyDelivered(id);
        _verifySignatures(id, signatures);
        _delivered[id] = true;
        emit MessageConsumed(id, m.srcChainId, msg.sender);
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
            // r, s, v from calldata as ECDSA.recoverCalldata does (OpenZeppelin 5.5+, whose
            // Strings needs Cancun's MCOPY): the contracts target Shanghai (see build.mjs).
            address signer = ECDSA.recover(
                digest, uint8(sig[64]), bytes32(sig[0:32]), bytes32(sig[32:64])
            );
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

    /// @dev Calls `handleMessage` with exactly `m.gasLimit` gas (a low-level call: the same
    /// outcomes as try/catch with `catch (bytes memory reason)`, but with bounded copying of the
    /// revert data). Any failure of the recipient (revert, panic, running out of its gas) is
    /// returned as a failure: it had all the gas its sender asked for. The gateway itself and
    /// code-less accounts are never called. At most `MAX_REASON_LENGTH` bytes of revert data are
    /// copied, so a recipient cannot make the failure path expensive with huge revert data.
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
        uint256 gasLimit = m.gasLimit;
        // EIP-150: a call gets at most 63/64 of the gas left. Demand enough that the recipient
        // gets exactly gasLimit; with less the relayer under-supplied gas, which must never make
        // a message fail, so the whole transaction reverts (and eth_estimateGas finds enough).
        uint256 gasBefore = gasleft();
        if (gasBefore < gasLimit + gasLimit / 63 + DELIVERY_GAS_RESERVE) revert InsufficientGas();
        assembly ("memory-safe") {
            ok := call(gasLimit, recipient, 0, add(data, 0x20), mload(data), 0, 0)
        }
        if (!ok) {
            uint256 size;
            assembly ("memory-safe") {
                size := returndatasize()
            }
            if (size == 0 && gasBefore - gasleft() >= gasLimit) {
                return (false, abi.encodeWithSelector(RecipientOutOfGas.selector, m.gasLimit));
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
