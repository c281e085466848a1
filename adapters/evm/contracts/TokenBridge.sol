// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

import {IMessageRecipient} from "./IMessageRecipient.sol";
import {BridgedToken} from "./BridgedToken.sol";

/// @dev The part of the Gateway the bridge uses.
interface IGateway {
    function send(uint64 dstChainId, address recipient, bytes calldata payload) external returns (bytes32 id);
}

/// @title Islands TokenBridge
/// @notice Locks native tokens on their home chain and mints `BridgedToken`s elsewhere; burns the
/// wrapped tokens to release the originals at home. Messages travel through the Gateway; the payload is
/// `abi.encode(uint64 homeChainId, address homeToken, address from, address to, uint256 amount)`.
contract TokenBridge is IMessageRecipient, Ownable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    struct Home {
        uint64 homeChainId;
        address homeToken;
    }

    address private immutable _gateway;

    mapping(uint64 => address) private _remoteBridge;
    mapping(address => bool) private _nativeAllowed;
    mapping(uint64 => mapping(address => address)) private _wrapped;
    mapping(address => Home) private _homeOf;

    event BridgedOut(
        bytes32 indexed messageId, address indexed token, uint64 indexed dstChainId, address from, address to, uint256 amount
    );
    event BridgedIn(bytes32 indexed messageId, address indexed token, uint64 indexed srcChainId, address to, uint256 amount);
    event RemoteBridgeSet(uint64 indexed chainId, address bridge);
    event NativeTokenSet(address indexed token, bool allowed);
    event WrappedTokenCreated(uint64 indexed homeChainId, address indexed homeToken, address wrapped);

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

    // ------------------------------------------------------------------ admin

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
        returns (bytes32 messageId)
    {
        if (amount == 0) revert ZeroAmount();
        if (to == address(0)) revert ZeroAddress();
        address remote = _remoteBridge[dstChainId];
        if (remote == address(0)) revert NoRemoteBridge(dstChainId);

        Home memory home = _homeOf[token];
        if (home.homeChainId != 0) {
            BridgedToken(token).burn(msg.sender, amount);
        } else if (_nativeAllowed[token]) {
            IERC20 t = IERC20(token);
            uint256 before = t.balanceOf(address(this));
            t.safeTransferFrom(msg.sender, address(this), amount);
            amount = t.balanceOf(address(this)) - before;
            if (amount == 0) revert NothingReceived();
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
    {
        if (msg.sender != _gateway) revert OnlyGateway();
        address remote = _remoteBridge[srcChainId];
        if (remote == address(0) || sender != remote) revert UnknownRemoteBridge(srcChainId, sender);

        (uint64 homeChainId, address homeToken,, address to, uint256 amount) =
            abi.decode(payload, (uint64, address, address, address, uint256));

        address token;
        if (homeChainId == block.chainid) {
            token = homeToken;
            IERC20(token).safeTransfer(to, amount);
        } else {
            token = _wrapped[homeChainId][homeToken];
            if (token == address(0)) revert NoWrappedToken(homeChainId, homeToken);
            BridgedToken(token).mint(to, amount);
        }
        emit BridgedIn(id, token, srcChainId, to, amount);
    }
}
