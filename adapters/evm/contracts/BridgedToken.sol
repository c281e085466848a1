// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title Wrapped representation of a token from another chain, minted and burnt by its TokenBridge.
contract BridgedToken is ERC20 {
    address private immutable _bridge;
    uint8 private immutable _decimals;

    error OnlyBridge();
    error ZeroBridge();

    modifier onlyBridge() {
        if (msg.sender != _bridge) revert OnlyBridge();
        _;
    }

    constructor(string memory name_, string memory symbol_, uint8 decimals_, address bridge_) ERC20(name_, symbol_) {
        if (bridge_ == address(0)) revert ZeroBridge();
        _bridge = bridge_;
        _decimals = decimals_;
    }

    function bridge() external view returns (address) {
        return _bridge;
    }

    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    function mint(address to, uint256 amount) external onlyBridge {
        _mint(to, amount);
    }

    function burn(address from, uint256 amount) external onlyBridge {
        _burn(from, amount);
    }
}
