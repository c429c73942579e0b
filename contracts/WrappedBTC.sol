// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title Wrapped BTC (tssnode)
/// @notice BTC held by the tssnode group's threshold key, as an ERC-20 with Bitcoin's 8
/// decimals (one unit is one satoshi, so amounts need no conversion across the bridge).
/// @dev Only its gateway mints and burns: the gateway creates it and is fixed for good
/// (immutable), so no owner key exists that could mint around the mint authority.
contract WrappedBTC is ERC20 {
    /// @notice The gateway that alone may mint and burn.
    address public immutable gateway;

    /// @notice A mint or burn from anyone but the gateway.
    error NotGateway(address caller);
    /// @notice A token without a gateway could never be minted.
    error ZeroGateway();

    constructor(address gateway_) ERC20("Wrapped BTC (tssnode)", "tsBTC") {
        if (gateway_ == address(0)) revert ZeroGateway();
        gateway = gateway_;
    }

    modifier onlyGateway() {
        if (msg.sender != gateway) revert NotGateway(msg.sender);
        _;
    }

    /// @notice 8, as Bitcoin: one token unit is one satoshi.
    function decimals() public pure override returns (uint8) {
        return 8;
    }

    /// @notice Mints `amount` to `to`; the gateway has checked the mint authority's signature.
    function mint(address to, uint256 amount) external onlyGateway {
        _mint(to, amount);
    }

    /// @notice Burns `amount` of `from`'s tokens; the gateway passes its own caller as
    /// `from`, so nobody can burn another holder's tokens through it.
    function burn(address from, uint256 amount) external onlyGateway {
        _burn(from, amount);
    }
}
