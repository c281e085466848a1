// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

import {IMessageRecipient} from "./IMessageRecipient.sol";
import {BridgedToken} from "./BridgedToken.sol";
import {Message} from "./Message.sol";

/// @dev The part of the Gateway the bridge uses.
interface IGateway {
    function send(uint64 dstChainId, address recipient, bytes calldata payload) external returns (bytes32 id);
    function consume(Message calldata m, bytes[] calldata signatures) external returns (bytes32 id);
}

/// @title Islands TokenBridge
/// @notice Locks native tokens on their home chain and mints `BridgedToken`s elsewhere; burns the
/// wrapped tokens to release the originals at home. Messages travel through the Gateway; the payload is
/// `abi.encode(uint64 homeChainId, address homeToken, address from, address to, uint256 amount)`.
/// A guardian (or the owner) can pause it and set rate limits: a token bucket per remote chain,
/// local token and direction. A transfer that cannot be delivered can be returned to its sender.
contract TokenBridge is IMessageRecipient, Ownable2Step, Pausable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    struct Home {
        uint64 homeChainId;
        address homeToken;
    }

    /// @dev A token bucket: `level` tokens at `updatedAt`, refilled by `refillPerSecond` up to
    /// `capacity`. Capacity 0 means no limit.
    struct Bucket {
        uint128 capacity;
        uint128 refillPerSecond;
        uint128 level;
        uint64 updatedAt;
    }

    address private immutable _gateway;
    address private _guardian;

    mapping(uint64 => address) private _remoteBridge;
    mapping(address => bool) private _nativeAllowed;
    mapping(uint64 => mapping(address => address)) private _wrapped;
    mapping(address => Home) private _homeOf;
    /// @dev remote chain id => local token => outbound => bucket
    mapping(uint64 => mapping(address => mapping(bool => Bucket))) private _buckets;

    event BridgedOut(
        bytes32 indexed messageId, address indexed token, uint64 indexed dstChainId, address from, address to, uint256 amount
    );
    event BridgedIn(bytes32 indexed messageId, address indexed token, uint64 indexed srcChainId, address to, uint256 amount);
    event RemoteBridgeSet(uint64 indexed chainId, address bridge);
    event NativeTokenSet(address indexed token, bool allowed);
    event WrappedTokenCreated(uint64 indexed homeChainId, address indexed homeToken, address wrapped);
    event GuardianSet(address indexed previousGuardian, address indexed newGuardian);
    event RateLimitSet(
        uint64 indexed remoteChainId, address indexed token, bool indexed outbound, uint256 capacity, uint256 refillPerSecond
    );
    event TransferReturned(bytes32 indexed originalId, bytes32 indexed returnId, address indexed to, uint256 amount);

    error OnlyGateway();
    error UnknownRemoteBridge(uint64 srcChainId, address sender);
    error NoRemoteBridge(uint64 dstChainId);
    error TokenNotSupported(address token);
    error NoWrappedToken(uint64 homeChainId, address homeToken);
    error WrappedTokenExists(uint64 homeChainId, address homeToken, address wrapped);
    error ZeroAmount();
    error ZeroAddress();
    error LocalChain();
    error IsWrappedToken(address token);
    error NothingReceived();
    error NotGuardianOrOwner(address caller);
    error NotAllowedToReturn(address caller);
    error NotThisBridge(address recipient);
    error RateLimitTooLarge();
    error RateLimited(uint64 remoteChainId, address token, bool outbound, uint256 available, uint256 amount);

    modifier onlyGuardianOrOwner() {
        if (msg.sender != _guardian && msg.sender != owner()) revert NotGuardianOrOwner(msg.sender);
        _;
    }

    constructor(address gateway_, address initialOwner) Ownable(initialOwner) {
        if (gateway_ == address(0)) revert ZeroAddress();
        _gateway = gateway_;
    }

    // ------------------------------------------------------------------ views

    function gateway() external view returns (address) {
        return _gateway;
    }

    function localChainId() public view returns (uint64) {
        return uint64(block.chainid);
    }

    function remoteBridge(uint64 chainId) external view returns (address) {
        return _remoteBridge[chainId];
    }

    /// @notice Whether `token` (a token of this chain) may be locked here.
    function nativeTokenAllowed(address token) external view returns (bool) {
        return _nativeAllowed[token];
    }

    function wrappedToken(uint64 homeChainId, address homeToken) external view returns (address) {
        return _wrapped[homeChainId][homeToken];
    }

    /// @notice Home of a wrapped token created by this bridge; (0, 0) for any other address.
    function homeOf(address wrapped) external view returns (uint64 homeChainId, address homeToken) {
        Home memory h = _homeOf[wrapped];
        return (h.homeChainId, h.homeToken);
    }

    /// @notice The bridge's balance of a native token (what is locked here).
    function lockedBalance(address token) external view returns (uint256) {
        return IERC20(token).balanceOf(address(this));
    }

    /// @notice Who may pause, unpause and set rate limits besides the owner (0: nobody).
    function guardian() external view returns (address) {
        return _guardian;
    }

    /// @notice The rate limit of (`remoteChainId`, `token`, direction) and what may pass now;
    /// capacity 0 means no limit, and then `available` is `type(uint256).max`.
    function rateLimit(uint64 remoteChainId, address token, bool outbound)
        external
        view
        returns (uint256 capacity, uint256 refillPerSecond, uint256 available)
    {
        Bucket memory b = _buckets[remoteChainId][token][outbound];
        return (b.capacity, b.refillPerSecond, _available(b));
    }

    // ------------------------------------------------------------------ admin

    /// @notice Sets the guardian (address(0) removes the role).
    function setGuardian(address newGuardian) external onlyOwner {
        emit GuardianSet(_guardian, newGuardian);
        _guardian = newGuardian;
    }

    /// @notice Stops bridgeOut, handleMessage and returnToSender (deliveries then fail and can be
    /// retried after `unpause`).
    function pause() external onlyGuardianOrOwner {
        _pause();
    }

    function unpause() external onlyGuardianOrOwner {
        _unpause();
    }

    /// @notice Sets the token bucket of (`remoteChainId`, local `token`, direction): at most
    /// `capacity` at once, refilled by `refillPerSecond`. Capacity 0 removes the limit. A new
    /// limit starts full; a changed one keeps what is available, up to the new capacity.
    function setRateLimit(uint64 remoteChainId, address token, bool outbound, uint256 capacity, uint256 refillPerSecond)
        external
        onlyGuardianOrOwner
    {
        if (remoteChainId == block.chainid) revert LocalChain();
        if (token == address(0)) revert ZeroAddress();
        if (capacity > type(uint128).max || refillPerSecond > type(uint128).max) revert RateLimitTooLarge();
        Bucket storage b = _buckets[remoteChainId][token][outbound];
        if (capacity == 0) {
            delete _buckets[remoteChainId][token][outbound];
            refillPerSecond = 0;
        } else {
            uint256 level = b.capacity == 0 ? capacity : _min(_available(b), capacity);
            b.capacity = uint128(capacity);
            b.refillPerSecond = uint128(refillPerSecond);
            b.level = uint128(level);
            b.updatedAt = uint64(block.timestamp);
        }
        emit RateLimitSet(remoteChainId, token, outbound, capacity, refillPerSecond);
    }

    /// @notice Registers the bridge trusted on `chainId` (address(0) removes it).
    function setRemoteBridge(uint64 chainId, address bridge) external onlyOwner {
        if (chainId == block.chainid) revert LocalChain();
        _remoteBridge[chainId] = bridge;
        emit RemoteBridgeSet(chainId, bridge);
    }

    /// @notice Allows or forbids locking `token` (a token of this chain) here. Forbidding does not
    /// stop releases of what is already locked.
    function setNativeToken(address token, bool allowed) external onlyOwner {
        if (token == address(0)) revert ZeroAddress();
        if (_homeOf[token].homeChainId != 0) revert IsWrappedToken(token);
        _nativeAllowed[token] = allowed;
        emit NativeTokenSet(token, allowed);
    }

    /// @notice Deploys the wrapped token for (`homeChainId`, `homeToken`), minted and burnt by this bridge.
    function createWrapped(uint64 homeChainId, address homeToken, string calldata name, string calldata symbol, uint8 decimals)
        external
        onlyOwner
        returns (address wrapped)
    {
        if (homeChainId == block.chainid || homeChainId == 0) revert LocalChain();
        if (homeToken == address(0)) revert ZeroAddress();
        address existing = _wrapped[homeChainId][homeToken];
        if (existing != address(0)) revert WrappedTokenExists(homeChainId, homeToken, existing);
        wrapped = address(new BridgedToken(name, symbol, decimals, address(this)));
        _wrapped[homeChainId][homeToken] = wrapped;
        _homeOf[wrapped] = Home(homeChainId, homeToken);
        emit WrappedTokenCreated(homeChainId, homeToken, wrapped);
    }

    // ------------------------------------------------------------------ bridging

    /// @notice Sends `amount` of `token` to `to` on `dstChainId`: burns it if it is a wrapped token
    /// of this bridge, else locks it (it must be an allowed native token). For a native token the
    /// amount actually received by the bridge is what is sent.
    function bridgeOut(address token, uint64 dstChainId, address to, uint256 amount)
        external
        nonReentrant
        whenNotPaused
        returns (bytes32 messageId)
    {
        if (amount == 0) revert ZeroAmount();
        if (to == address(0)) revert ZeroAddress();
        address remote = _remoteBridge[dstChainId];
        if (remote == address(0)) revert NoRemoteBridge(dstChainId);

        Home memory home = _homeOf[token];
        if (home.homeChainId != 0) {
            _take(dstChainId, token, true, amount);
            BridgedToken(token).burn(msg.sender, amount);
        } else if (_nativeAllowed[token]) {
            IERC20 t = IERC20(token);
            uint256 before = t.balanceOf(address(this));
            t.safeTransferFrom(msg.sender, address(this), amount);
            amount = t.balanceOf(address(this)) - before;
            if (amount == 0) revert NothingReceived();
            _take(dstChainId, token, true, amount);
            home = Home(uint64(block.chainid), token);
        } else {
            revert TokenNotSupported(token);
        }

        bytes memory payload = abi.encode(home.homeChainId, home.homeToken, msg.sender, to, amount);
        messageId = IGateway(_gateway).send(dstChainId, remote, payload);
        emit BridgedOut(messageId, token, dstChainId, msg.sender, to, amount);
    }

    /// @inheritdoc IMessageRecipient
    function handleMessage(bytes32 id, uint64 srcChainId, address sender, bytes calldata payload)
        external
        override
        nonReentrant
        whenNotPaused
    {
        if (msg.sender != _gateway) revert OnlyGateway();
        address remote = _remoteBridge[srcChainId];
        if (remote == address(0) || sender != remote) revert UnknownRemoteBridge(srcChainId, sender);

        (uint64 homeChainId, address homeToken,, address to, uint256 amount) =
            abi.decode(payload, (uint64, address, address, address, uint256));

        bool atHome = homeChainId == block.chainid;
        address token = atHome ? homeToken : _wrapped[homeChainId][homeToken];
        if (token == address(0)) revert NoWrappedToken(homeChainId, homeToken);
        _take(srcChainId, token, false, amount);
        if (atHome) {
            IERC20(token).safeTransfer(to, amount);
        } else {
            BridgedToken(token).mint(to, amount);
        }
        emit BridgedIn(id, token, srcChainId, to, amount);
    }

    /// @notice Returns a transfer that was not delivered here to its sender on the source chain:
    /// the gateway marks the message consumed (it can never be delivered after this), and a
    /// transfer with `from` and `to` swapped goes back to the source bridge, which releases or
    /// mints the amount to the original sender. Callable by the guardian, the owner, or the
    /// transfer's original sender.
    function returnToSender(Message calldata m, bytes[] calldata signatures)
        external
        nonReentrant
        whenNotPaused
        returns (bytes32 returnId)
    {
        if (m.recipient != address(this)) revert NotThisBridge(m.recipient);
        address remote = _remoteBridge[m.srcChainId];
        if (remote == address(0) || m.sender != remote) revert UnknownRemoteBridge(m.srcChainId, m.sender);
        (uint64 homeChainId, address homeToken, address from, address to, uint256 amount) =
            abi.decode(m.payload, (uint64, address, address, address, uint256));
        if (msg.sender != from && msg.sender != _guardian && msg.sender != owner()) {
            revert NotAllowedToReturn(msg.sender);
        }
        bytes32 originalId = IGateway(_gateway).consume(m, signatures);
        bytes memory payload = abi.encode(homeChainId, homeToken, to, from, amount);
        returnId = IGateway(_gateway).send(m.srcChainId, remote, payload);
        emit TransferReturned(originalId, returnId, from, amount);
    }

    // ------------------------------------------------------------------ rate limits

    function _available(Bucket memory b) private view returns (uint256) {
        if (b.capacity == 0) return type(uint256).max;
        uint256 refilled = uint256(b.level) + (block.timestamp - b.updatedAt) * b.refillPerSecond;
        return _min(refilled, b.capacity);
    }

    /// @dev Takes `amount` from the bucket of (`remoteChainId`, `token`, direction), or reverts
    /// `RateLimited`; no-op without a limit.
    function _take(uint64 remoteChainId, address token, bool outbound, uint256 amount) private {
        Bucket storage b = _buckets[remoteChainId][token][outbound];
        if (b.capacity == 0) return;
        uint256 available = _available(b);
        if (amount > available) revert RateLimited(remoteChainId, token, outbound, available, amount);
        b.level = uint128(available - amount);
        b.updatedAt = uint64(block.timestamp);
    }

    function _min(uint256 a, uint256 b) private pure returns (uint256) {
        return a < b ? a : b;
    }
}
